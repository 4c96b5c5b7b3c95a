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

// acquire takes the lock c asks for, for the process owner: with -n (or
// -w 0) in one attempt, otherwise waiting until it is free, the timeout
// passes, or a signal arrives on sigs. After a signal it holds nothing and
// returns a *signalError, even if the lock was taken as the signal arrived.
func acquire(c lockConfig, owner int, sigs <-chan os.Signal, log logrus.FieldLogger) (*nfslock.Lock, error) {
	opts := []nfslock.Option{nfslock.WithOwner(owner), nfslock.WithMessage(c.message), nfslock.WithLogger(log)}
	if c.nonblock {
		return nfslock.TryLock(c.path, opts...)
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
	lock, err := nfslock.Acquire(ctx, c.path, opts...)
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
