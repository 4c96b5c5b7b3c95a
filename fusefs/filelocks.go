//go:build linux

package fusefs

import (
	"context"
	"errors"
	"math"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/nfslockfs/nfslockfs/nfslock"
	"github.com/sirupsen/logrus"
)

// Locks that programs take with flock(2), fcntl(2) (F_SETLK, F_SETLKW,
// F_GETLK and their OFD variants) and lockf(3) on a lock file are the
// cluster lock of that file, the one that opening it for writing takes
// (the mount negotiates FUSE's POSIX and flock lock support, so the kernel
// grants none of them on its own):
//
//   - a request is granted only once the nfslock lock is held for it; one
//     the daemon cannot serve fails (ENOLCK), it is never granted on this
//     node alone;
//   - byte ranges are widened to the whole file, never less exclusion than
//     asked; a POSIX owner's lock goes once it has unlocked every range it
//     locked;
//   - owners are the kernel's: the open file description for flock and OFD
//     locks, released at its last close (RELEASE); the process for POSIX
//     locks, released when it closes any descriptor of the file (FLUSH,
//     whose lock owner lockowner.go recovers);
//   - an open file that holds the lock by its open (holdHandle) is granted
//     every request at once, and its close releases the lock;
//   - blocking requests wait in nfslock.Acquire, in the same FIFO queue as
//     blocked opens, and end on a signal as blocked opens do (signals.go);
//     non-blocking ones give EAGAIN;
//   - F_GETLK reports the holder's pid when it is a process of this node,
//     and a conflicting lock with pid 0 when it is not.
//
// Shared requests (LOCK_SH, F_RDLCK) take nfslock's shared lock. A shared
// lock asked to become exclusive is released first, as flock(2) converts;
// an exclusive one asked to become shared stays exclusive.
//
// Limits: a lock on a directory of the mount is the kernel's own,
// node-local: FUSE does not pass directory locks to the daemon.

// A lockOwner is one kernel lock owner's claim on one lock path.
type lockOwner struct {
	path  string
	owner uint64 // of the open file (flock, OFD) or of the process's descriptor table (POSIX)
}

// An ownerLock is the cluster lock held for a lockOwner. Its hold is what
// an open file that holds the lock by its open is (never registered with
// the kernel): the lock, the process it names, its release.
type ownerLock struct {
	hold   *holdHandle         // an exclusive lock; nil for a shared one
	shared *nfslock.SharedLock // a shared lock (LOCK_SH, F_RDLCK); nil for an exclusive one
	holder caller              // the process its record names
	via    *plainHandle        // the open file it was taken through
	posix  bool                // not flock(2)'s: POSIX (a process's) or OFD (the open file's)
	ranges byteRanges          // what the owner has locked; the lock goes when nothing is left
	// released is closed once a shared lock is released (an exclusive
	// one's hold says so itself).
	released chan struct{}
}

var (
	_ = (fs.NodeGetlker)((*lockNode)(nil))
	_ = (fs.NodeSetlker)((*lockNode)(nil))
	_ = (fs.NodeSetlkwer)((*lockNode)(nil))
)

func (n *lockNode) Setlk(ctx context.Context, f fs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return n.fsys.setlk(ctx, n.path, f, owner, lk, flags, false)
}

func (n *lockNode) Setlkw(ctx context.Context, f fs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32) syscall.Errno {
	return n.fsys.setlk(ctx, n.path, f, owner, lk, flags, true)
}

func (n *lockNode) Getlk(ctx context.Context, f fs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32, out *fuse.FileLock) syscall.Errno {
	return n.fsys.getlk(n.path, f, owner, lk, out)
}

// offsetMax is the kernel's OFFSET_MAX, where a lock "to the end of the
// file" ends.
const offsetMax = math.MaxInt64

// setlk serves SETLK (wait false) and SETLKW for owner on the lock at path,
// through the open file f.
func (fsys *filesystem) setlk(ctx context.Context, path string, f fs.FileHandle, owner uint64, lk *fuse.FileLock, flags uint32, wait bool) syscall.Errno {
	var via *plainHandle
	switch f := f.(type) {
	case *holdHandle:
		return f.lostErrno() // it holds the lock already, unless its lease was lost
	case *plainHandle:
		via = f
	default:
		return syscall.ENOLCK
	}
	key := lockOwner{path: path, owner: owner}
	if lk.End < lk.Start {
		return syscall.EINVAL
	}
	switch lk.Typ {
	case syscall.F_UNLCK:
		fsys.unlockFileLock(ctx, key, lk.Start, lk.End)
		return 0
	case syscall.F_RDLCK, syscall.F_WRLCK:
	default:
		return syscall.EINVAL
	}
	if errno := fsys.fileLockLost(key); errno != 0 {
		return errno
	}
	if fsys.extendFileLock(ctx, key, lk) {
		return 0
	}
	start := time.Now()
	errno := fsys.takeFileLock(ctx, key, via, lk, flags&fuse.FUSE_LK_FLOCK == 0, wait)
	fsys.events.Acquire(acquireResult(errno, fsys.opening.Err() != nil), time.Since(start))
	return errno
}

// takeFileLock takes the lock of key through the open file via, for lk's
// range, shared for F_RDLCK; posix is false for flock(2)'s requests.
func (fsys *filesystem) takeFileLock(ctx context.Context, key lockOwner, via *plainHandle, lk *fuse.FileLock, posix, wait bool) syscall.Errno {
	path := key.path
	if fsys.opening.Err() != nil {
		return syscall.ENOLCK
	}
	c, log := fsys.lockerOf(ctx, path)
	shared := lk.Typ == syscall.F_RDLCK
	if wait && fsys.heldByProcess(path, c.pid, shared) {
		log.Warn("a process waits for a lock that it holds itself through the mount: EDEADLK")
		return syscall.EDEADLK
	}
	if !posix && c.pid != 0 {
		// The open file's lock: name the longest-lived process that
		// shares it (see keeper.go).
		if keeper := sharedAncestor(c.pid, fsys.mountPath(path)); keeper != c.pid {
			c.pid, c.command = keeper, commandLine(keeper)
			log = log.WithFields(logrus.Fields{"pid": c.pid, "command": c.command})
		}
	}
	opts := fsys.lockOptions(c, log)
	start := time.Now()
	ol := &ownerLock{holder: c, via: via, posix: posix, released: make(chan struct{})}
	var err error
	switch {
	case shared && wait:
		ol.shared, err = waitToAcquire(fsys, ctx, c, log, func(wait context.Context) (*nfslock.SharedLock, error) {
			return nfslock.AcquireShared(wait, path, opts...)
		})
	case shared:
		fsys.awaitRelease(path)
		ol.shared, err = nfslock.TryLockShared(path, opts...)
	default:
		var lock *nfslock.Lock
		if wait {
			lock, err = fsys.waitLock(ctx, c, path, opts, log)
		} else {
			lock, err = fsys.tryLock(path, opts)
		}
		if err == nil {
			ol.hold = newHoldHandle(fsys, lock, path, c)
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
		log.WithError(err).WithField("waited", time.Since(start)).Info("lock request interrupted while waiting")
		return syscall.EINTR
	case errors.Is(err, nfslock.ErrLocked):
		log.WithError(err).Debug("lock is held")
		return syscall.EAGAIN
	default:
		log.WithError(err).Warn("taking the lock failed")
		return errnoOf(err)
	}
	ol.ranges.add(lk.Start, lk.End)
	fsys.mu.Lock()
	fsys.fileLocks[key] = ol
	fsys.mu.Unlock()
	switch {
	case posix:
	case ol.hold != nil:
		fsys.keepNamed(path, ol.hold.lock, ol.hold.released)
	default:
		fsys.keepNamed(path, ol.shared, ol.released)
	}
	return 0
}

// fileLockLost is ENOLCK if the lock key holds already lost its lease.
func (fsys *filesystem) fileLockLost(key lockOwner) syscall.Errno {
	fsys.mu.Lock()
	ol := fsys.fileLocks[key]
	fsys.mu.Unlock()
	if ol == nil || ol.hold == nil {
		return 0
	}
	return ol.hold.lostErrno()
}

// extendFileLock adds lk's range to the lock key holds already, if that
// lock is at least as strong as lk asks. A shared lock asked to become
// exclusive is released first (as flock(2) converts: not atomically), and
// then it reports false.
func (fsys *filesystem) extendFileLock(ctx context.Context, key lockOwner, lk *fuse.FileLock) bool {
	fsys.mu.Lock()
	ol := fsys.fileLocks[key]
	if ol != nil && (ol.hold != nil || lk.Typ == syscall.F_RDLCK) {
		ol.ranges.add(lk.Start, lk.End)
		fsys.mu.Unlock()
		return true
	}
	fsys.mu.Unlock()
	if ol != nil {
		fsys.dropFileLock(ctx, key, func(*ownerLock) bool { return true })
	}
	return false
}

// fileLockFor returns the hold of the lock that h, or process pid, took by
// flock(2) or fcntl(2) on h's lock, if there is one.
func (fsys *filesystem) fileLockFor(h *plainHandle, pid int) *holdHandle {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	for key, ol := range fsys.fileLocks {
		if ol.hold != nil && key.path == h.path && (ol.via == h || pid != 0 && ol.holder.pid == pid) {
			return ol.hold
		}
	}
	return nil
}

// heldByProcess reports whether an open file of the mount holds the lock
// at path for process pid (exclusively, if exclusiveOnly): then a wait of that
// process for it would never end.
func (fsys *filesystem) heldByProcess(path string, pid int, exclusiveOnly bool) bool {
	if pid == 0 {
		return false
	}
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if h := fsys.held[path]; h != nil && h.owner.pid == pid {
		return true
	}
	for key, ol := range fsys.fileLocks {
		if key.path == path && ol.holder.pid == pid && (ol.hold != nil || !exclusiveOnly) {
			return true
		}
	}
	return false
}

// unlockFileLock takes [start, end] out of what key holds, and releases
// its lock when nothing is left.
func (fsys *filesystem) unlockFileLock(ctx context.Context, key lockOwner, start, end uint64) {
	fsys.dropFileLock(ctx, key, func(ol *ownerLock) bool { return ol.ranges.remove(start, end) })
}

// closedByOwner runs on FLUSH, a close(2) of a descriptor of the lock at
// path: the closing process's POSIX lock on it goes, as POSIX says, before
// close returns.
func (fsys *filesystem) closedByOwner(ctx context.Context, path string) {
	if owner, ok := fsys.flushes.flushOwner(ctx); ok {
		fsys.dropFileLock(ctx, lockOwner{path: path, owner: owner}, func(ol *ownerLock) bool { return ol.posix })
	}
}

// dropFileLock releases the lock of key if it has one and drop (called
// with fsys.mu held) says so, and waits for the release unless the request
// ctx is interrupted (the release then goes on without it).
func (fsys *filesystem) dropFileLock(ctx context.Context, key lockOwner, drop func(*ownerLock) bool) {
	fsys.mu.Lock()
	ol := fsys.fileLocks[key]
	if ol == nil || !drop(ol) {
		fsys.mu.Unlock()
		return
	}
	delete(fsys.fileLocks, key)
	fsys.mu.Unlock()
	select {
	case <-fsys.releaseOwnerLock(ol):
	case <-ctx.Done():
	}
}

// releaseFileLocksOf runs on RELEASE of h, after its last close: the flock
// and OFD locks taken through it go, and so would a POSIX one, whose
// owner's close has released it already.
func (fsys *filesystem) releaseFileLocksOf(h *plainHandle) {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	for key, ol := range fsys.fileLocks {
		if ol.via == h {
			delete(fsys.fileLocks, key)
			fsys.releaseOwnerLock(ol)
		}
	}
}

// noteClose notes a close of one of h's descriptors in the locks taken
// through it, for the "release timing" rule (see tryLock).
func (fsys *filesystem) noteClose(h *plainHandle) {
	now := time.Now().UnixNano()
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	for _, ol := range fsys.fileLocks {
		if ol.via == h && ol.hold != nil {
			ol.hold.closedAt.Store(now)
		}
	}
}

// awaitRelease waits, briefly, for the RELEASE of open files of the mount
// that hold the lock at path and whose descriptor was just closed (see
// tryLock).
func (fsys *filesystem) awaitRelease(path string) {
	var holds []*holdHandle
	fsys.mu.Lock()
	if h := fsys.held[path]; h != nil {
		holds = append(holds, h)
	}
	for key, ol := range fsys.fileLocks {
		if key.path == path && ol.hold != nil {
			holds = append(holds, ol.hold)
		}
	}
	fsys.mu.Unlock()
	for _, h := range holds {
		h.awaitRelease()
	}
}

// getlk serves GETLK: whether owner, through the open file f, could take
// the lock at path as lk asks now. out is F_UNLCK when it could (free, or
// held by owner or f); otherwise the conflicting lock over the whole file:
// a write lock, or for a write request a read lock of shared holders, with
// the pid of a holder that is a process of this node, 0 when not.
func (fsys *filesystem) getlk(path string, f fs.FileHandle, owner uint64, lk *fuse.FileLock, out *fuse.FileLock) syscall.Errno {
	*out = fuse.FileLock{Typ: syscall.F_UNLCK}
	if _, ok := f.(*holdHandle); ok {
		return 0
	}
	fsys.mu.Lock()
	own := fsys.fileLocks[lockOwner{path: path, owner: owner}]
	if own != nil && (own.hold != nil || lk.Typ == syscall.F_RDLCK) {
		fsys.mu.Unlock()
		return 0
	}
	pid, held := fsys.mountHolder(path)
	fsys.mu.Unlock()
	if !held {
		h, err := nfslock.Inspect(path)
		switch {
		case errors.Is(err, nfslock.ErrNotLocked), err == nil && h.State == nfslock.HolderDead:
			if lk.Typ == syscall.F_WRLCK {
				return fsys.sharedConflict(path, own != nil, out)
			}
			return 0
		case err != nil:
			fsys.log.WithError(err).WithField("path", path).Warn("cannot read a lock")
			return errnoOf(err)
		case h.State == nfslock.HolderAlive:
			pid = h.Record.Pid
		}
	}
	*out = fuse.FileLock{Start: 0, End: offsetMax, Typ: syscall.F_WRLCK, Pid: uint32(pid)}
	return 0
}

// mountHolder returns the pid of the process for which an open file of
// the mount holds the lock at path, if one does. Called with fsys.mu held.
func (fsys *filesystem) mountHolder(path string) (int, bool) {
	if h := fsys.held[path]; h != nil {
		return h.owner.pid, true
	}
	for key, ol := range fsys.fileLocks {
		if key.path == path && ol.hold != nil {
			return ol.holder.pid, true
		}
	}
	return 0, false
}

// releaseOwnerLock releases ol's lock in the background, retrying (see
// unlockRetrying), and returns a channel closed once it is released.
func (fsys *filesystem) releaseOwnerLock(ol *ownerLock) <-chan struct{} {
	if ol.hold != nil {
		fsys.release(ol.hold)
		return ol.hold.released
	}
	fsys.releasing.Go(func() {
		defer fsys.keepers.forget(ol.shared) // after released is closed (see keepers.add)
		defer close(ol.released)
		log := fsys.log.WithField("path", ol.shared.Path())
		if err := fsys.unlockRetrying(log, ol.shared); err != nil {
			log.WithError(err).Warn("releasing a shared lock failed")
		}
	})
	return ol.released
}
