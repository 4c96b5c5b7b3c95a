//go:build linux

package main

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// progressEvery is how often -v reports the holder while waiting.
const progressEvery = 2 * time.Second

// A signalError reports that a signal ended the wait for the lock.
type signalError struct{ sig syscall.Signal }

func (e *signalError) Error() string { return "interrupted by " + e.sig.String() }

// A heldLock is what the CLI holds: an exclusive *nfslock.Lock, or with -s
// an *nfslock.SharedLock.
type heldLock interface {
	Path() string
	SetOwner(pid int) error
	Unlock() error
	Err() error
	Lost() <-chan struct{}
	LeaseDuration() time.Duration
	Token() uint64
}

var (
	_ heldLock = (*nfslock.Lock)(nil)
	_ heldLock = (*nfslock.SharedLock)(nil)
)

// acquire takes the lock c asks for, for the process owner: with -n (or
// -w 0) in one attempt, otherwise waiting until it is free, the timeout
// passes, or a signal arrives on sigs. After a signal it holds nothing and
// returns a *signalError, even if the lock was taken as the signal arrived.
func acquire(c lockConfig, owner int, sigs <-chan os.Signal, log logrus.FieldLogger) (heldLock, error) {
	opts := []nfslock.Option{nfslock.WithOwner(owner), nfslock.WithMessage(c.message), nfslock.WithLogger(log)}
	switch {
	case c.nonblock && c.shared:
		return nonNil(nfslock.TryLockShared(c.path, opts...))
	case c.nonblock:
		return nonNil(nfslock.TryLock(c.path, opts...))
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	if c.timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, c.timeout)
		defer stop()
	}
	acquired := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() { watchWait(ctx, cancel, sigs, acquired, c, log) })
	var (
		lock heldLock
		err  error
	)
	if c.shared {
		lock, err = nonNil(nfslock.AcquireShared(ctx, c.path, opts...))
	} else {
		lock, err = nonNil(nfslock.Acquire(ctx, c.path, opts...))
	}
	close(acquired)
	watcher.Wait()

	var sig *signalError
	if errors.As(context.Cause(ctx), &sig) {
		if lock != nil {
			if err := lock.Unlock(); err != nil {
				printError(err)
			}
		}
		return nil, sig
	}
	return lock, err
}

// nonNil returns l as a heldLock that is nil when err is not: a nil
// pointer in an interface would not be.
func nonNil[L heldLock](l L, err error) (heldLock, error) {
	if err != nil {
		return nil, err
	}
	return l, nil
}

// watchWait runs while acquire waits, until done is closed: a signal on
// sigs cancels the wait, and with -v the holder is reported every
// progressEvery.
func watchWait(ctx context.Context, cancel context.CancelCauseFunc, sigs <-chan os.Signal, done <-chan struct{}, c lockConfig, log logrus.FieldLogger) {
	start := time.Now()
	var progress <-chan time.Time
	if c.verbose {
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		progress = t.C
	}
	for {
		select {
		case s := <-sigs:
			cancel(&signalError{s.(syscall.Signal)})
			return
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-progress:
			reportHolder(c.path, time.Since(start), log)
		}
	}
}

// reportHolder tells a person who is waiting what they are waiting for.
func reportHolder(path string, waited time.Duration, log logrus.FieldLogger) {
	entry := log.WithField("waited", waited.Round(100*time.Millisecond))
	h, err := nfslock.Inspect(path)
	if err != nil {
		entry.WithError(err).Info("waiting for lock")
		return
	}
	entry.WithFields(holderFields(path, h)).Info("waiting for lock")
}
