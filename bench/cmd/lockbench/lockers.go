package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// newLocker returns the locker a worker's -tool names. Tools run as
// commands get their command lines from the environment (see toolEnv), so
// the worker's flags stay the same for every tool:
//
//	flock2   open + flock(2) LOCK_EX, released by close: the kernel's local lock
//	open     open(O_WRONLY|O_CREAT|O_TRUNC), released by close, as `exec 9>PATH` does:
//	         a lock through the nfslockfs mount, no lock at all elsewhere (the checker's control)
//	library  nfslock.Acquire and Lock.Unlock
//	coresim  Core's Lock_file.Nfs v2 attempts and retry policy (see coresim.go)
//	hold     $LOCKBENCH_HOLD PATH cat: a flock(1)-style command holding the lock while cat runs
//	pair     $LOCKBENCH_LOCK PATH $LOCKBENCH_AFTER, then $LOCKBENCH_UNLOCK PATH (if set):
//	         separate lock and unlock commands, or one whole cycle (flock -n PATH true)
func newLocker(tool, path string) (locker, error) {
	switch tool {
	case "flock2":
		return &fdLocker{path: path, flags: syscall.O_RDWR | syscall.O_CREAT, flock: true}, nil
	case "open":
		return &fdLocker{path: path, flags: syscall.O_WRONLY | syscall.O_CREAT | syscall.O_TRUNC}, nil
	case "library":
		return &libraryLocker{path: path}, nil
	case "coresim":
		return newCoreSim(path)
	case "hold":
		return &holdLocker{argv: append(toolEnv("LOCKBENCH_HOLD"), path, "cat")}, nil
	case "pair":
		p := &pairLocker{lockArgv: append(append(toolEnv("LOCKBENCH_LOCK"), path), toolEnv("LOCKBENCH_AFTER")...)}
		if u := toolEnv("LOCKBENCH_UNLOCK"); len(u) > 0 {
			p.unlockArgv = append(u, path)
		}
		return p, nil
	}
	return nil, fmt.Errorf("unknown tool %q", tool)
}

// toolEnv splits a command line from the environment at spaces.
func toolEnv(name string) []string { return strings.Fields(os.Getenv(name)) }

// fdLocker holds the lock as an open file descriptor.
type fdLocker struct {
	path  string
	flags int
	flock bool
	fd    int
}

func (l *fdLocker) lock() error {
	fd, err := syscall.Open(l.path, l.flags|syscall.O_CLOEXEC, 0o666)
	if err != nil {
		return &os.PathError{Op: "open", Path: l.path, Err: err}
	}
	if l.flock {
		if err := syscall.Flock(fd, syscall.LOCK_EX); err != nil {
			syscall.Close(fd)
			return &os.PathError{Op: "flock", Path: l.path, Err: err}
		}
	}
	l.fd = fd
	return nil
}

func (l *fdLocker) unlock() error { return syscall.Close(l.fd) }

type libraryLocker struct {
	path string
	held *nfslock.Lock
}

func (l *libraryLocker) lock() (err error) {
	l.held, err = nfslock.Acquire(context.Background(), l.path)
	return err
}

func (l *libraryLocker) unlock() error { return l.held.Unlock() }

// holdLocker runs a command that holds the lock while cat runs. The lock
// is held once cat echoes a byte written to it, and released when cat sees
// end of input and the command exits.
type holdLocker struct {
	argv []string
	cmd  *exec.Cmd
	in   io.WriteCloser
}

func (l *holdLocker) lock() error {
	cmd := exec.Command(l.argv[0], l.argv[1:]...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	var echo [1]byte
	if _, err := in.Write([]byte("x")); err != nil {
		return err
	}
	if _, err := io.ReadFull(out, echo[:]); err != nil {
		in.Close()
		return fmt.Errorf("%s: %w (%v)", l.argv[0], err, cmd.Wait())
	}
	l.cmd, l.in = cmd, in
	return nil
}

func (l *holdLocker) unlock() error {
	l.in.Close()
	return l.cmd.Wait()
}

// pairLocker runs one command to lock and another to unlock.
type pairLocker struct{ lockArgv, unlockArgv []string }

func (l *pairLocker) lock() error { return run(l.lockArgv) }

func (l *pairLocker) unlock() error {
	if l.unlockArgv == nil {
		return nil
	}
	return run(l.unlockArgv)
}

func run(argv []string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return nil
}
