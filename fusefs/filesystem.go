//go:build linux

package fusefs

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
	"github.com/sirupsen/logrus"
)

// filesystem is the state that the nodes of one mount share: the locks its
// open files hold and the work it has in flight.
type filesystem struct {
	format              Format
	log                 logrus.FieldLogger
	events              Events
	backing, mountpoint string // the backing directory, and where it is mounted
	noLockOnOpen        bool   // see Options.NoLockOnOpen

	// opening ends when the daemon stops taking lock-taking opens (see
	// Server.Shutdown): blocked opens then fail with EINTR, new ones with
	// ESHUTDOWN.
	opening       context.Context
	cancelOpening context.CancelCauseFunc
	waiting       atomic.Int64   // opens blocked waiting for a lock
	releasing     sync.WaitGroup // releases handed off by RELEASE, until done
	creates       staleCreates
	mu            sync.Mutex
	held          map[string]*holdHandle   // by lock path: the open files holding locks
	fileLocks     map[lockOwner]*ownerLock // the locks taken by flock(2) and fcntl(2)
	flushes       *flushOwners             // the lock owner of each FLUSH in flight
	keepers       keepers                  // the watches of the processes held locks name
}

// errStopping is why blocked opens fail when the daemon stops.
var errStopping = errors.New("nfslockfs is shutting down")

func newFilesystem(format Format, log logrus.FieldLogger, events Events) *filesystem {
	opening, stop := context.WithCancelCause(context.Background())
	return &filesystem{format: format, log: log, events: events, opening: opening, cancelOpening: stop,
		held: make(map[string]*holdHandle), fileLocks: make(map[lockOwner]*ownerLock)}
}

// recordText returns what a read of the lock at path shows now: the
// rendered record, or nothing when the lock is free.
func (fsys *filesystem) recordText(path string) ([]byte, error) {
	h, err := nfslock.Inspect(path)
	if errors.Is(err, nfslock.ErrNotLocked) {
		return fsys.sharedText(path)
	}
	if err != nil {
		return nil, err
	}
	return fsys.format.render(h), nil
}

// hold registers an open file that holds the lock at its path.
func (fsys *filesystem) hold(h *holdHandle) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	fsys.held[h.path] = h
}

// holderOf returns the open file holding the lock at path, if one does.
func (fsys *filesystem) holderOf(path string) *holdHandle {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	return fsys.held[path]
}

// release hands h's release to a goroutine of the filesystem, so that
// RELEASE (of which the kernel runs only MaxBackground at once) returns at
// once whatever the backing store's latency, and retries it (see
// unlockRetrying).
func (fsys *filesystem) release(h *holdHandle) {
	fsys.releasing.Go(func() {
		defer fsys.keepers.forget(h.lock) // after released is closed (see keepers.add)
		defer close(h.released)
		defer fsys.forget(h)
		err := fsys.unlockRetrying(fsys.log.WithField("path", h.path), h.lock)
		log := fsys.log.WithError(err).WithField("path", h.path)
		switch {
		case err == nil:
			fsys.events.Release(Released, time.Since(h.since))
		case errors.Is(err, nfslock.ErrLost):
			log.Warn("lock's lease was lost before its release")
			h.noteLost()
			fsys.events.Release(LeaseGone, time.Since(h.since))
		case errors.Is(err, nfslock.ErrNotLocked) || errors.Is(err, nfslock.ErrLocked):
			log.Warn("lock was broken before its release")
			h.noteBroken()
			fsys.events.Release(WasBroken, time.Since(h.since))
		default:
			fsys.events.Release(Abandoned, time.Since(h.since))
		}
	})
}

// mountLock is a lock of the mount: an *nfslock.Lock or *nfslock.SharedLock.
type mountLock interface {
	Unlock() error
	EndVouch()
}

// unlockRetrying releases lock until it succeeds or fails in a way that
// retrying cannot cure (see notOurs), and returns Unlock's last error. A
// release that fails on a filesystem error (ESTALE, EIO, a server outage)
// is retried, 10 ms to 1 s apart, until it succeeds: the record names a
// process that believes the lock released, so a lock left held would stay
// held until that process exits, and its own next open would wait for
// itself. Only once the daemon is stopping does it give up, after a few
// tries, and then ends its vouch for the lock (see nfslock.WithVouch): the
// record alone decides, and the lock is stale once the process it names
// has exited.
func (fsys *filesystem) unlockRetrying(log logrus.FieldLogger, lock mountLock) error {
	delay := minReleaseDelay
	for try := 1; ; try++ {
		err := lock.Unlock()
		if err == nil || notOurs(err) {
			return err
		}
		fsys.events.BackingError(OpRelease, errnoOf(err))
		if fsys.opening.Err() != nil && try >= stoppingReleaseTries {
			log.WithError(err).Warn("releasing lock failed; giving up as the daemon stops: it stays held until the process its record names exits")
			lock.EndVouch()
			return err
		}
		if try == 1 {
			log.WithError(err).Warn("releasing lock failed; retrying until it succeeds")
		}
		time.Sleep(delay)
		delay = min(2*delay, maxReleaseDelay)
	}
}

// notOurs reports whether err, of a release, says that the lock is no
// longer ours (its lease lost, broken, taken over): no retry can cure it.
func notOurs(err error) bool {
	return errors.Is(err, nfslock.ErrLost) || errors.Is(err, nfslock.ErrNotLocked) || errors.Is(err, nfslock.ErrLocked)
}

const (
	minReleaseDelay      = 10 * time.Millisecond
	maxReleaseDelay      = time.Second
	stoppingReleaseTries = 5
)

func (fsys *filesystem) forget(h *holdHandle) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if fsys.held[h.path] == h {
		delete(fsys.held, h.path)
	}
}

// settle runs when the kernel has let go of the mount: releases in flight
// finish, and a lock still held by an open file whose RELEASE never came
// (a lazily detached mount loses the last one) is released once its holder
// process is dead. Holders that closed the file as they exited are given
// settleGrace to be gone. A live holder may still believe it holds the
// lock, so its lock stays; it becomes stale when that process exits, and
// the next acquirer of this host cleans it up.
func (fsys *filesystem) settle() {
	fsys.releasing.Wait()
	fsys.endVouches()
	left := fsys.holds()
	deadline := time.Now().Add(settleGrace)
	for _, h := range left {
		for !h.ownerDead() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !h.ownerDead() {
			fsys.log.WithFields(logrus.Fields{"path": h.path, "pid": h.owner.pid, "command": h.owner.command}).
				Warn("lock stays held: its holder is running; it becomes stale when the holder exits")
			continue
		}
		fsys.release(h)
	}
	fsys.releasing.Wait()
}

const settleGrace = 2 * time.Second

// endVouches ends the daemon's vouches for the locks its open files hold
// (see nfslock.WithVouch): once the mount is gone, the records alone must
// say whether they are held, as when the daemon has exited, and settle
// judges them so.
func (fsys *filesystem) endVouches() {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	for _, h := range fsys.held {
		h.lock.EndVouch()
	}
	for _, ol := range fsys.fileLocks {
		if ol.hold != nil {
			ol.hold.lock.EndVouch()
		}
		if ol.shared != nil {
			ol.shared.EndVouch()
		}
	}
}

// holds returns the locks that the mount's open files hold now, by their
// open or by flock(2) and fcntl(2).
func (fsys *filesystem) holds() []*holdHandle {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	left := make([]*holdHandle, 0, len(fsys.held)+len(fsys.fileLocks))
	for _, h := range fsys.held {
		left = append(left, h)
	}
	for _, ol := range fsys.fileLocks {
		if ol.hold != nil { // a dead process's shared lock is cleaned up by the next writer
			left = append(left, ol.hold)
		}
	}
	return left
}

// ownerDead reports whether the lock h holds names a process that is gone.
func (h *holdHandle) ownerDead() bool {
	holder, err := nfslock.Inspect(h.path)
	return err == nil && holder.State == nfslock.HolderDead
}

// errnoOf returns the errno a failure of the lock library wraps, or EIO.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return syscall.EIO
}
