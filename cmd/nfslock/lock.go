//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

const lockHelp = `Usage:
  nfslock [options] PATH COMMAND [ARG...]
  nfslock [options] PATH -c 'SHELL COMMAND'
  nfslock status [--json] PATH...
  nfslock unlock PATH
  nfslock break --force PATH

Hold the lock PATH while COMMAND runs, and exit with COMMAND's status. The
lock is the file PATH.nfs_lock, taken with link(2), so it excludes holders on
every host that shares PATH's directory over NFS; it is compatible with Jane
Street Core's Lock_file.Nfs. While COMMAND runs, the lock names COMMAND's
process: it is held until COMMAND ends, even if nfslock itself is killed.
As with flock(1), COMMAND's background processes keep the lock: COMMAND
inherits file descriptor 3, and when COMMAND exits while a process that
inherited it still runs, nfslock exits with COMMAND's status and leaves the
lock to a keeper process (nfslock-keeper), which releases it when the last
of them is gone.
PATH itself may be anything, as with flock: a data file, a directory or the
script is locked and left untouched (only a PATH that does not exist gets a
copy of the record while the lock is held).

Options (before PATH; all words after PATH belong to COMMAND):
  -n, --nonblock              fail at once if the lock is held
  -w, --timeout DURATION      fail if the lock is not taken within DURATION:
                              seconds (10, 0.5) or a Go duration (1m30s);
                              0 is the same as -n
  -E, --conflict-exit-code N  exit status when -n or -w fails (default 1)
  -m, --message TEXT          the lock's message (default: the command line)
  -v, --verbose               report on stderr who holds the lock while
                              waiting, and how long taking it took
  -c, --command CMD           (after PATH) run CMD with $SHELL -c
  -s, --shared                a shared lock: any number of shared holders
                              on any hosts, excluded by an exclusive one
  -x, -e, --exclusive         an exclusive lock (the default)
  -h, --help                  show this help
  -V, --version               show the version

To lock a file named status, unlock or break, write ./status or -- status.

SIGINT, SIGTERM and SIGHUP are passed on to COMMAND; nfslock waits for it,
releases the lock and exits as COMMAND did. The same signals while waiting
stop the wait.

COMMAND finds the lock's path in NFSLOCK_PATH. In a directory whose
operators made its locks leases (a file .nfslock-lease there, holding a
duration such as 30s), nfslock renews the lease while COMMAND runs, and
COMMAND finds its fencing token in NFSLOCK_TOKEN: a number larger than
every token given out before for this lock, on any host. There COMMAND
runs in a process group of its own (unless stdin is a terminal); if the
lease is lost (nfslock could not renew it in time, or found it broken),
nfslock says so on stderr, sends SIGTERM to that group at once and
SIGKILL a sixth of the lease later, and exits with status 75. If nfslock
itself is killed there, nobody renews the lease, which other hosts take a
lease later: COMMAND gets SIGTERM at once.

Exit status:
  COMMAND's status, or 128+N if it died of signal N
  1 (or -E N)   the lock is held (-n) or the timeout passed (-w)
  2             usage error
  66            the lock could not be taken (permission, missing directory,
                name too long, I/O error), or it is held for nfslock's own
                process (nfslock PATH nfslock PATH ...), which would wait
                for itself for ever
  75            the lock's lease was lost while COMMAND ran; COMMAND was
                stopped
  126, 127      COMMAND cannot be run, or is not found
  128+N         signal N arrived while waiting for the lock

Run 'nfslock status --help', 'nfslock unlock --help', 'nfslock break --help'
for the other commands.
`

// lockMain is nfslock's main mode: hold the lock on PATH while COMMAND runs.
func lockMain(args []string) int {
	c, err := parseLockArgs(args)
	if err != nil {
		return reportParseError(err, lockHelp)
	}
	if c.path, err = lockPath(c.path); err != nil {
		printError(err)
		return exitLockFailed
	}
	// Look COMMAND up before waiting, so that a typo fails at once.
	command, code, err := lookCommand(c.argv[0])
	if err != nil {
		printError(err)
		return code
	}
	log := newLogger(c.verbose)
	sigs, stop := notifyForwarded()
	defer stop()
	s, err := newScope()
	if err != nil {
		printError(err)
		return exitLockFailed
	}
	defer s.Close()
	// COMMAND's process starts (held at its gate) before the wait, so that
	// the record names it from the first and its start-up does not delay
	// the handoff.
	attr, group := commandAttr(c.path)
	gated, err := startGated(command, c.argv, attr, s)
	if err != nil {
		printError(err)
		return exitCannotRun
	}
	// The lock's files are 0666 whatever the caller's umask, as the
	// mount's daemon makes them: who may lock is decided by the directory
	// (creating and removing names in it), and every user of a mount
	// shared with --allow-other must be able to open a held lock to wait
	// for it. COMMAND, started already, keeps the caller's umask.
	syscall.Umask(0)
	start := time.Now()
	lock, err := acquire(c, gated.Process.Pid, sigs, log)
	if err != nil {
		gated.cancel()
		return notAcquired(c, err, time.Since(start), log)
	}
	return gated.run(lock, group, sigs, func(lost bool) { settle(lock, s, lost, log) }, log)
}

// settle ends nfslock's part in the lock once COMMAND has exited: it
// releases the lock if its lease was lost or no process holds the scope
// any more, and otherwise hands it on to a keeper (see scope.go). A lock
// with a lease, which only this process renews, or one whose keeper cannot
// be started, nfslock keeps itself until the scope is free.
func settle(lock heldLock, s *scope, lost bool, log logrus.FieldLogger) {
	if lost || !s.inUse() {
		if err := lock.Unlock(); err != nil && !errors.Is(err, nfslock.ErrLost) {
			printError(err) // a loss was reported when it happened
		}
		return
	}
	if lock.LeaseDuration() == 0 {
		keeper, handover, err := startKeeper(lock.Path(), s)
		if err == nil {
			err = lock.SetOwner(keeper.Process.Pid)
			handover.Close()
			if err != nil {
				printError(fmt.Errorf("handing the lock on to its keeper: %w", err))
				return
			}
			log.WithFields(logrus.Fields{"path": lock.Path(), "pid": keeper.Process.Pid}).Info("command exited; its background processes keep the lock, held by a keeper")
			keeper.Process.Release()
			return
		}
		log.WithError(err).Warn("cannot start a keeper")
	}
	log.WithField("path", lock.Path()).Info("command exited; nfslock keeps the lock until its background processes end")
	if err := lock.SetOwner(os.Getpid()); err != nil {
		printError(err)
	}
	scopeFree := make(chan struct{})
	go func() {
		io.Copy(io.Discard, s.r)
		close(scopeFree)
	}()
	select {
	case <-scopeFree:
	case <-lock.Lost():
	}
	if err := lock.Unlock(); err != nil && !errors.Is(err, nfslock.ErrLost) {
		printError(err)
	}
}

// notAcquired reports why the lock was not taken and returns the exit
// status. As with flock(1), a conflict is silent unless -v.
func notAcquired(c lockConfig, err error, waited time.Duration, log logrus.FieldLogger) int {
	var sig *signalError
	var held *nfslock.HeldError
	switch {
	case errors.Is(err, syscall.EDEADLK):
		// Held for this very process (nfslock PATH nfslock PATH ...):
		// never silent, and no conflict that a retry could end.
		printError(err)
		return exitLockFailed
	case errors.As(err, &sig):
		log.WithFields(logrus.Fields{"path": c.path, "waited": waited.Round(time.Millisecond)}).Infof("stopped waiting: %v", sig)
		return 128 + int(sig.sig)
	case errors.As(err, &held) && c.nonblock:
		log.WithFields(holderFields(c.path, held.Holder)).Info("lock is held")
		return c.conflictCode
	case errors.As(err, &held):
		log.WithFields(holderFields(c.path, held.Holder)).WithField("waited", waited.Round(time.Millisecond)).Info("timed out waiting for lock")
		return c.conflictCode
	case errors.Is(err, context.DeadlineExceeded):
		// The wait timed out on something other than a holder (a
		// filesystem error): that deserves a word even without -v.
		printError(err)
		return c.conflictCode
	}
	printError(err)
	return exitLockFailed
}

// holderFields describes a holder for the log.
func holderFields(path string, h nfslock.Holder) logrus.Fields {
	f := logrus.Fields{"path": path}
	if !h.Since.IsZero() {
		f["held"] = time.Since(h.Since).Round(time.Millisecond)
	}
	if h.State == nfslock.HolderCorrupt || h.Record.Host == "" {
		f["raw"] = string(h.Raw) // as nfslock status names it; logrus quotes it as needed
		return f
	}
	f["host"], f["pid"], f["message"] = h.Record.Host, h.Record.Pid, h.Record.Message
	return f
}

// newLogger logs to stderr: warnings always, and with -v the library's
// acquire and release and nfslock's reports while waiting.
func newLogger(verbose bool) *logrus.Logger {
	log := logrus.New()
	log.Out = os.Stderr
	log.Level = logrus.WarnLevel
	if verbose {
		log.Level = logrus.InfoLevel
	}
	return log
}
