//go:build linux

package fusefs

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
	"github.com/sirupsen/logrus"
)

const (
	// recheckInterval is how often a blocked open that was told of a
	// harmless signal looks again for one that must end it: the kernel
	// sends FUSE_INTERRUPT only once per request.
	recheckInterval = 100 * time.Millisecond
	// releaseGrace is how long a non-blocking open waits for the RELEASE
	// of a lock whose open file was just closed, before it answers EAGAIN.
	releaseGrace = 20 * time.Millisecond
	// closeWindow is how recent that close must be: a FLUSH longer ago came
	// from a descriptor whose copies (dup, fork) still hold the lock.
	closeWindow = time.Second
)

// openLock takes the lock at path for the process opening it with flags
// (open(2) flags as FUSE passes them), and returns the open file that holds
// it. It waits unless flags has O_NONBLOCK or O_EXCL; then a held lock
// gives EAGAIN, or EEXIST for O_EXCL. A process that holds the lock already
// through another open file gets EDEADLK (see callerHolds). A wait ends with EINTR when a signal
// must end the caller's open (see signals.go) or the daemon stops. Once it
// has stopped, opens fail with ESHUTDOWN: not EINTR, which programs (bash
// among them) retry at once.
func (fsys *filesystem) openLock(ctx context.Context, path string, flags uint32) (*holdHandle, syscall.Errno) {
	if fsys.opening.Err() != nil {
		return nil, syscall.ESHUTDOWN
	}
	c, log := fsys.lockerOf(ctx, path)
	if fsys.callerHolds(path, c) {
		log.Warn("the process opening the lock holds it already through another open file: EDEADLK")
		return nil, syscall.EDEADLK
	}
	opts := fsys.lockOptions(c, log)
	start := time.Now()
	var (
		lock *nfslock.Lock
		err  error
	)
	excl := flags&syscall.O_EXCL != 0
	if excl || flags&syscall.O_NONBLOCK != 0 {
		lock, err = fsys.tryLock(path, opts)
	} else {
		lock, err = fsys.waitLock(ctx, c, path, opts, log)
	}
	switch {
	case err == nil:
		h := newHoldHandle(fsys, lock, path, c)
		h.newFile = excl
		fsys.hold(h)
		fsys.keepNamed(path, lock, h.released) // forked children keep the lock (see keeper.go)
		return h, 0
	case errors.Is(err, context.Canceled):
		log.WithError(err).WithField("waited", time.Since(start)).Info("open interrupted while waiting for the lock")
		return nil, syscall.EINTR
	case errors.Is(err, nfslock.ErrLocked) && excl:
		return nil, syscall.EEXIST
	case errors.Is(err, nfslock.ErrLocked):
		log.WithError(err).Debug("lock is held")
		return nil, syscall.EAGAIN
	}
	log.WithError(err).Warn("taking the lock failed")
	return nil, errnoOf(err)
}

// lockerOf identifies the process that asks for the lock at path in the
// request ctx, and returns it with a logger with its fields.
func (fsys *filesystem) lockerOf(ctx context.Context, path string) (caller, logrus.FieldLogger) {
	c, err := callerOf(ctx)
	if err != nil {
		// /proc would not say (the caller died, or /proc hides it): name
		// the thread, which is the process for a single-threaded caller.
		fsys.log.WithError(err).WithFields(logrus.Fields{"path": path, "tid": c.tid}).
			Warn("cannot identify the process taking a lock; naming its thread")
		c.pid = c.tid
	}
	log := fsys.log.WithFields(logrus.Fields{"path": path, "pid": c.pid, "command": c.command})
	if c.pid == 0 {
		log.Warn("the process taking a lock is outside the daemon's pid namespace; the lock names the daemon")
	}
	return c, log
}

// lockOptions name c in a lock's record: its pid and, as the message, its
// command line. The daemon vouches for the lock (nfslock.WithVouch): c may
// exit while a child it forked keeps the file, and until keepNamed names
// the child, the record names a dead process that the other processes of
// this node must not take for a stale holder.
func (fsys *filesystem) lockOptions(c caller, log logrus.FieldLogger) []nfslock.Option {
	return []nfslock.Option{nfslock.WithOwner(c.pid), nfslock.WithMessage(c.command), nfslock.WithLogger(log), fsys.staleCleanup(), nfslock.WithVouch()}
}

// tryLock takes the lock without waiting, except for the release of a lock
// whose open file was just closed: the kernel sends RELEASE shortly after
// close() returns, and "close, then open again with O_NONBLOCK" must work
// as it does with flock(2). (A lock that an open file of this mount still
// holds is held whatever its record says: nfslock.TryLock never judges a
// lock of its own process from the disk.)
func (fsys *filesystem) tryLock(path string, opts []nfslock.Option) (*nfslock.Lock, error) {
	fsys.awaitRelease(path)
	return nfslock.TryLock(path, opts...)
}

// waitLock waits for the lock until it is acquired, or until the caller
// must give up: it got a signal that ends its open, or the daemon stops.
// Then the error matches context.Canceled, and the context's cause says
// why. A lock acquired just as the wait was cancelled is released, never
// returned: the caller is told EINTR and must not hold it.
func (fsys *filesystem) waitLock(ctx context.Context, c caller, path string, opts []nfslock.Option, log logrus.FieldLogger) (*nfslock.Lock, error) {
	return waitToAcquire(fsys, ctx, c, log, func(wait context.Context) (*nfslock.Lock, error) {
		return nfslock.Acquire(wait, path, opts...)
	})
}

// waitToAcquire runs acquire, a blocking acquisition for caller c in the request
// ctx, with waitLock's rules for signals and shutdown.
func waitToAcquire[L mountLock](fsys *filesystem, ctx context.Context, c caller, log logrus.FieldLogger, acquire func(context.Context) (L, error)) (L, error) {
	wait, cancel := context.WithCancelCause(fsys.opening)
	var watcher sync.WaitGroup
	defer watcher.Wait()
	defer cancel(nil)
	watcher.Go(func() { watchCaller(ctx.Done(), wait, cancel, c.tid, log) })

	fsys.waiting.Add(1)
	fsys.events.Waiting(1)
	lock, err := acquire(wait)
	fsys.waiting.Add(-1)
	fsys.events.Waiting(-1)
	if wait.Err() == nil {
		return lock, err
	}
	if err == nil {
		// At once if it can, so that the caller's next open finds it free;
		// otherwise retried in the background, as a RELEASE is.
		if err := lock.Unlock(); err != nil && !notOurs(err) {
			fsys.releasing.Go(func() {
				if err := fsys.unlockRetrying(log, lock); err != nil {
					log.WithError(err).Warn("releasing a lock acquired as its request was interrupted failed")
				}
			})
		}
	}
	var none L
	return none, &interruptedError{cause: context.Cause(wait)}
}

// interruptedError ends a wait that the caller's signal or the daemon's
// shutdown cut short. It matches context.Canceled.
type interruptedError struct{ cause error }

func (e *interruptedError) Error() string        { return "wait interrupted: " + e.cause.Error() }
func (e *interruptedError) Is(target error) bool { return target == context.Canceled }
func (e *interruptedError) Unwrap() error        { return e.cause }

// signalError is the cause of a wait ended by a signal of the caller.
type signalError struct{ sig syscall.Signal }

func (e *signalError) Error() string { return "the caller got " + e.sig.String() }

var (
	errCallerGone    = errors.New("the caller is gone")
	errCallerUnknown = errors.New("the caller got a signal, and its pid is unknown")
)

// watchCaller cancels wait when the caller's open must end. It does
// nothing until FUSE tells of a signal (interrupted is closed); it then
// judges the caller's pending signals at once and every recheckInterval,
// until one must end the open or the wait ends otherwise.
func watchCaller(interrupted <-chan struct{}, wait context.Context, cancel context.CancelCauseFunc, tid int, log logrus.FieldLogger) {
	select {
	case <-interrupted:
	case <-wait.Done():
		return
	}
	log.Debug("the waiting caller got a signal")
	tick := time.NewTicker(recheckInterval)
	defer tick.Stop()
	for {
		if cause := mustStopWaiting(tid); cause != nil {
			cancel(cause)
			return
		}
		select {
		case <-tick.C:
		case <-wait.Done():
			return
		}
	}
}

// mustStopWaiting returns why the blocked open of thread tid must end, or
// nil if it should keep waiting.
func mustStopWaiting(tid int) error {
	if tid == 0 {
		return errCallerUnknown
	}
	st, err := readThreadStatus(tid)
	if err != nil {
		return errCallerGone
	}
	if sig := st.interruptingSignal(); sig != 0 {
		return &signalError{sig: sig}
	}
	return nil
}
