package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/nfslockfs/nfslockfs/nfslock"
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

// runCommand runs COMMAND (argv, found at path) under the held lock, passing
// on the signals that arrive on sigs, and returns its exit status (128+N if
// it died of signal N). COMMAND starts only once the lock's record names
// its process (see startGated).
func runCommand(lock *nfslock.Lock, path string, argv []string, sigs <-chan os.Signal, log logrus.FieldLogger) int {
	cmd, gate, err := startGated(path, argv)
	if err != nil {
		printError(err)
		return exitCannotRun
	}
	if err := lock.SetOwner(cmd.Process.Pid); err != nil {
		gate.Close() // the gate sees end of file: COMMAND never runs
		cmd.Wait()
		printError(fmt.Errorf("not running %s: %w", argv[0], err))
		return exitLockFailed
	}
	// Should the gate have died meanwhile, the write fails and its end is
	// reported below like COMMAND's.
	gate.Write([]byte{1})
	gate.Close()

	exited := make(chan struct{})
	go func() {
		cmd.Wait() // its outcome is in cmd.ProcessState
		close(exited)
	}()
	for {
		select {
		case s := <-sigs:
			log.WithFields(logrus.Fields{"pid": cmd.Process.Pid, "signal": s}).Info("passing signal on to command")
			cmd.Process.Signal(s)
		case <-exited:
			return exitStatus(cmd.ProcessState)
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
