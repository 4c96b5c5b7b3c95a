//go:build linux

package nfslock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// Acquire takes the lock on path, waiting until it is free, ctx ends, or a
// permanent error (a read-only or missing directory, a name too long, ...)
// makes waiting pointless; a path that cannot be a lock gives an error
// matching ErrInvalidPath at once, and so does a lock held in the name of
// this very process, with one matching syscall.EDEADLK (see TryLock). When ctx ends, the error matches ctx.Err()
// (context.DeadlineExceeded or context.Canceled) and, if the lock was held,
// ErrLocked: a *HeldError naming the holder, whether the wait polled it, the
// lock is held by this process, or the caller was queued behind another
// waiter of this process (then it names the holder that waiter last saw).
// Ending a wait does no I/O, so it returns at once even if the server hangs.
//
// Waiters of one process for one lock are served in arrival order: only the
// first polls, and a release in this process hands the lock to it at once.
// A release by another process of this host wakes it through inotify; a
// release on another host is seen by polling P.nfs_lock with a randomized
// interval growing from 1 ms to 150 ms.
//
// A lock that shared holders hold (AcquireShared) is acquired once they have
// all released it; meanwhile new shared holders wait behind this Acquire.
func Acquire(ctx context.Context, path string, opts ...Option) (*Lock, error) {
	l, err := acquireGate(ctx, path, true, opts...)
	if err != nil {
		return nil, err
	}
	if err := l.excludeReaders(ctx, true); err != nil {
		return nil, err
	}
	return l, nil
}

// acquireGate is Acquire without regard to shared holders: P.nfs_lock
// alone, as a reader takes it for a moment (see shared.go). An exclusive
// one tries to mark the lock as such (see becomeP).
func acquireGate(ctx context.Context, path string, exclusive bool, opts ...Option) (*Lock, error) {
	path, err := NormalizePath(path)
	if err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	rec, err := o.record()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	w, ahead := waiters.join(path)
	defer waiters.leave(path, w)
	if ahead > 0 || heldLocks.get(path) != nil {
		// It waits without polling: say so, since nothing else will.
		o.log.WithFields(logrus.Fields{"path": path, "ahead": ahead}).Debug("queued for lock behind this process")
	}
	l, err := w.acquire(ctx, path, rec, o, exclusive)
	if err != nil {
		return nil, err
	}
	if err := l.activate(o, time.Since(start)); err != nil {
		return nil, err
	}
	return l, nil
}

func (w *waiter) acquire(ctx context.Context, p string, rec Record, o *options, exclusive bool) (*Lock, error) {
	var (
		watch   *releaseWatch
		poll    backoff
		lastErr error
	)
	defer func() { watch.Close() }()
	for {
		if err := ctx.Err(); err != nil {
			return nil, gaveUp(p, err, lastErr)
		}
		if !waiters.isHead(p, w) || heldLocks.get(p) != nil {
			// Not our turn, or held by this process: a release or the
			// waiter ahead of us leaving signals w.wake.
			select {
			case <-w.wake:
			case <-ctx.Done():
			}
			continue
		}
		l, err := tryAcquire(p, rec, o.onStale, exclusive)
		if err == nil {
			return l, nil
		}
		var held *HeldError
		isHeld := errors.As(err, &held)
		if errors.Is(err, syscall.EDEADLK) || !isHeld && isPermanent(err) {
			return nil, err
		}
		lastErr = err
		waiters.saw(p, held)
		if watch == nil {
			watch = watchReleases(p)
			removeOldAttempts(p, time.Now())
		}
		o.log.WithError(err).WithField("path", p).Debug("waiting for lock")
		if err := w.waitForChange(ctx, watch, &poll, held); err != nil {
			return nil, gaveUp(p, err, lastErr)
		}
	}
}

// waitForChange sleeps until the lock may have become free: a release in
// this process or on this host, or a poll that finds P.nfs_lock changed or
// its local holder dead. held is the holder last seen, nil after a
// filesystem error (then the next poll simply retries).
//
// Behind a holder of another host it also cleans up, every
// deadReaderSweep, the reader files of dead processes of this host: that
// holder may be a writer waiting for them with P.nfs_lock held, and only
// this host's processes can judge them dead (see "Shared locks" in
// docs/design.md).
func (w *waiter) waitForChange(ctx context.Context, watch *releaseWatch, poll *backoff, held *HeldError) error {
	swept := time.Now()
	for {
		if held != nil && !isLocal(held.Holder.Record) && time.Since(swept) >= deadReaderSweep {
			if mayHaveReaders(held.Path) {
				Readers(held.Path) // removes them; an error is retried at the next sweep
			}
			swept = time.Now()
		}
		t := time.NewTimer(poll.next())
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-w.wake:
			t.Stop()
			return nil
		case <-watch.Released():
			t.Stop()
			return nil
		case <-t.C:
			if held == nil || !held.unchanged() {
				return nil
			}
		}
	}
}

// deadReaderSweep is how often a waiter behind another host's holder
// cleans up the reader files of dead processes of its host: one listing of
// P.nfs_readers per waiting process and period, while it is a directory.
const deadReaderSweep = time.Second

// mayHaveReaders reports whether the lock on p may have shared holders:
// whether P.nfs_readers is a directory, or cannot be told. Absent, or a
// file (an exclusive holder's mark), it has none, and the sweep would cost
// the server a round trip or two for nothing: the open of a directory
// revalidates it, and a listing fails on the mark only after the open has
// revalidated the record file it names. The lstat, just after a poll has
// revalidated the lock's directory, is answered from this host's caches
// while that directory is unchanged; a directory made since is seen at
// the next sweep. (On the real-NFS rig a waiter's sweep behind a marked
// writer cost 2 GETATTRs, about 2 of its 14 requests a second on NFSv3.)
func mayHaveReaders(p string) bool {
	fi, err := os.Lstat(readersDir(p))
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	return err != nil || fi.IsDir()
}

// unchanged reports, at the cost of an open of the lock's directory and an
// lstat (on NFS about one round trip: see revalidateDir), whether the lock
// is still as it was when e was made: the same file, and a local holder
// still alive.
func (e *HeldError) unchanged() bool {
	if !e.leaseEnd.IsZero() && !now().Before(e.leaseEnd) {
		return false // judge the lease again
	}
	name := lockFile(e.Path)
	revalidateDir(filepath.Dir(name))
	fi, err := os.Lstat(name)
	if err != nil || !fileIDOf(fi).equal(e.file) {
		return false
	}
	h := e.Holder
	return h.State == HolderCorrupt || !isLocal(h.Record) || alive(h.Record)
}

func (id fileID) equal(o fileID) bool {
	return id.dev == o.dev && id.ino == o.ino && id.size == o.size && id.mtime.Equal(o.mtime)
}

// gaveUp reports a wait for p that ctxErr ended; last is the error of the
// waiter's last attempt, nil if it made none. The holder named is, in order:
// this process's own Lock on p, the holder the last attempt found, or, for
// a waiter that never attempted (queued behind another of this process),
// the holder the head of the queue last found. It does no I/O: a wait that
// ends must end at once, even on a hung server. The error matches ctxErr
// and, when a holder is named, ErrLocked; it names the path once.
func gaveUp(p string, ctxErr, last error) error {
	if l := heldLocks.get(p); l != nil {
		last = l.heldError()
	} else if last == nil {
		if held := waiters.lastSeen(p); held != nil {
			last = held
		}
	}
	if last == nil {
		return fmt.Errorf("nfslock: %s: gave up waiting: %w", p, ctxErr)
	}
	return fmt.Errorf("%w; gave up waiting: %w", last, ctxErr)
}
