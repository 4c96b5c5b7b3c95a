//go:build linux

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// forwarded are the signals nfslock passes on to COMMAND (and that stop a
// wait for the lock).
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}

// notifyForwarded delivers the forwarded signals to the returned channel
// until stop is called. A signal that nfslock was started with ignored
// (nohup, a shell's background job) stays ignored, for nfslock and for
// COMMAND, which inherits that.
func notifyForwarded() (sigs <-chan os.Signal, stop func()) {
	ch := make(chan os.Signal, len(forwarded))
	for _, s := range forwarded {
		if !signal.Ignored(s) {
			signal.Notify(ch, s)
		}
	}
	return ch, func() { signal.Stop(ch) }
}

// lookCommand finds COMMAND as execvp(3) would, and returns its path, or
// the exit status a shell gives for it: 127 if it is not found, 126 if it
// cannot be run.
func lookCommand(name string) (string, int, error) {
	path, err := exec.LookPath(name)
	if errors.Is(err, exec.ErrDot) {
		err = nil // found relative to the current directory; execvp runs it
	}
	var lookErr *exec.Error
	if errors.As(err, &lookErr) {
		err = lookErr.Err
	}
	switch {
	case err == nil:
		return path, 0, nil
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return "", exitNotFound, fmt.Errorf("%s: command not found", name)
	default:
		return "", exitCannotRun, fmt.Errorf("%s: cannot run: %w", name, err)
	}
}

// run lets COMMAND run, now that lock is held and its record names
// COMMAND's process, and passes on the signals that arrive on sigs until
// COMMAND exits. Then, before COMMAND is reaped (until then it counts as
// the lock's live holder), it calls settle, which releases the lock or
// hands it on, telling it whether the lock's lease was lost. run returns
// COMMAND's exit status (128+N if it died of signal N), or exitLost if the
// lease was lost meanwhile (see lossKiller). group says whether COMMAND has
// a process group of its own.
func (g *gatedCommand) run(lock heldLock, group bool, sigs <-chan os.Signal, settle func(lost bool), log logrus.FieldLogger) int {
	g.open(commandEnv(lock))
	loss := &lossKiller{lock: lock, pid: g.Process.Pid, group: group}
	defer loss.stop()
	lost, killed := lock.Lost(), (<-chan time.Time)(nil)

	exited := make(chan error, 1)
	go func() { exited <- waitExit(g.Process.Pid) }()
	for {
		select {
		case s := <-sigs:
			log.WithFields(logrus.Fields{"pid": g.Process.Pid, "signal": s}).Info("passing signal on to command")
			g.Process.Signal(s)
		case <-lost:
			lost, killed = nil, loss.lost()
		case <-killed:
			loss.signal(syscall.SIGKILL)
		case err := <-exited:
			if err != nil {
				// Cannot watch without reaping: reap, then settle.
				log.WithError(err).Warn("waiting for command")
				g.Wait()
			}
			settle(loss.kill != nil)
			if err == nil {
				g.Wait() // its outcome is in g.ProcessState
			}
			if loss.kill != nil {
				return exitLost
			}
			return exitStatus(g.ProcessState)
		}
	}
}

// exitStatus is a finished process's status as a shell reports it.
func exitStatus(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}
