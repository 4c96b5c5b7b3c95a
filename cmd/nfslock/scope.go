//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// A lock taken by "nfslock PATH COMMAND" has flock(1)'s scope: flock's lock
// lives on an open file that COMMAND inherits, so it is held while COMMAND
// or any process that inherited the file from it runs ("sh -c 'daemon &'"
// keeps it), and released when the last of them is gone.
//
// nfslock gives COMMAND the write end of a pipe as file descriptor
// scopeFD, close-on-exec off, and keeps the read end: the read end sees
// end of file once every process holding the write end has closed it or
// exited. While COMMAND runs, the lock's record names COMMAND. When
// COMMAND exits and the pipe is still held, nfslock starts a keeper (its
// own executable with argv[0] keeperArg0, in a session of its own, with the
// read end) and names the keeper in the record before it reaps COMMAND: a
// zombie counts as alive until its parent reaps it, so the record names a
// live process at every instant. nfslock then exits with COMMAND's status,
// as flock(1) does; the keeper waits for end of file and releases the lock.
// docs/design.md has the safety argument and the limits.

const scopeFD = 3 // COMMAND's descriptor of the scope: the first of exec.Cmd.ExtraFiles

// A scope is the pipe whose write end COMMAND and its descendants hold.
type scope struct{ r, w *os.File }

func newScope() (*scope, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating the lock's scope: %w", err)
	}
	return &scope{r: r, w: w}, nil
}

// started drops nfslock's own copy of the write end, once COMMAND's
// process has one.
func (s *scope) started() { s.w.Close() }

// inUse reports whether a process still holds the write end.
func (s *scope) inUse() bool {
	fds := []unix.PollFd{{Fd: int32(s.r.Fd()), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		// POLLHUP: no writer is left (a COMMAND that wrote to the
		// descriptor makes it readable too, which says nothing). A failed
		// poll keeps the lock (fail safe).
		return err != nil || n == 0 || fds[0].Revents&unix.POLLHUP == 0
	}
}

func (s *scope) Close() {
	s.r.Close()
	s.w.Close()
}

// waitExit waits until process pid has exited, leaving it a zombie: until
// it is reaped it still counts as the lock's live holder.
func waitExit(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
}

const keeperArg0 = "nfslock-keeper"

// startKeeper starts the keeper of the lock at path (normalized), with the
// scope's read end as its descriptor 3 and the read end of a handover pipe
// as 4. The keeper releases the lock only after nfslock has closed the
// returned write end of the handover pipe (having named the keeper in the
// record, or given up), so that the two never change the record at once.
func startKeeper(path string, s *scope) (*exec.Cmd, *os.File, error) {
	hr, hw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer hr.Close()
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{keeperArg0, path},
		Dir:         "/", // the caller's directory may be a mount it keeps busy
		ExtraFiles:  []*os.File{s.r, hr},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true}, // no terminal's signals
	}
	if err := cmd.Start(); err != nil {
		hw.Close()
		return nil, nil, err
	}
	return cmd, hw, nil
}

// runKeeper is the keeper's side: args are the lock's path. It returns
// once the lock is released, or found to be no longer its own.
func runKeeper(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "nfslock: the keeper is started by nfslock only")
		return exitUsage
	}
	io.Copy(io.Discard, os.NewFile(4, "handover")) // nfslock is done with the record
	io.Copy(io.Discard, os.NewFile(3, "scope"))    // the last process that inherited the lock is gone
	// Core's unlock: removes the lock only if its record names this
	// process (or a dead one: nfslock died before naming the keeper, and
	// now every process of the scope is gone too).
	if err := nfslock.Unlock(args[0]); err != nil && !errors.Is(err, nfslock.ErrNotLocked) {
		return 1
	}
	return 0
}
