//go:build linux

package fusefs

import (
	"context"
	"errors"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/nfslockfs/nfslockfs/nfslock"
	"github.com/sirupsen/logrus"
)

// A lockNode is a lock file: opening it for writing takes the lock, reading
// it shows the holder.
type lockNode struct {
	fs.Inode
	fsys *filesystem
	path string // the lock path P in the backing directory
}

var (
	_ = (fs.NodeOpener)((*lockNode)(nil))
	_ = (fs.NodeGetattrer)((*lockNode)(nil))
	_ = (fs.NodeSetattrer)((*lockNode)(nil))
)

func (n *lockNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, errno := n.fsys.open(ctx, n.path, flags, false)
	if errno != 0 {
		return nil, 0, errno
	}
	return fh, fuse.FOPEN_DIRECT_IO, 0
}

// open opens the lock at path with open(2) flags, for OPEN or, if create,
// CREATE: for reading only, at once; for writing, once the lock is taken
// (see openLock and createLock). The handle is never nil: without one, the
// kernel sends no RELEASE, and the lock would never be released.
func (fsys *filesystem) open(ctx context.Context, path string, flags uint32, create bool) (fs.FileHandle, syscall.Errno) {
	if flags&syscall.O_ACCMODE == syscall.O_RDONLY || fsys.noLockOnOpen {
		return &plainHandle{fsys: fsys, path: path}, 0
	}
	take := fsys.openLock
	if create {
		take = fsys.createLock
	}
	start := time.Now()
	h, errno := take(ctx, path, flags)
	fsys.noteAcquire(errno, create, time.Since(start))
	if errno != 0 {
		return nil, errno
	}
	return h, 0
}

// noteAcquire tells the mount's Events how an open for writing ended. A
// create answered ESTALE is not an end: the kernel retries it as an open.
func (fsys *filesystem) noteAcquire(errno syscall.Errno, create bool, took time.Duration) {
	if create && errno == syscall.ESTALE {
		return
	}
	result := acquireResult(errno, fsys.opening.Err() != nil)
	if result == Failed {
		fsys.events.BackingError(OpAcquire, errno)
	}
	fsys.events.Acquire(result, took)
}

// staleCleanup is the lock option that tells the mount's Events of the
// stale locks an acquisition removes.
func (fsys *filesystem) staleCleanup() nfslock.Option {
	return nfslock.WithStaleCleanup(func(nfslock.Holder) { fsys.events.StaleCleanup() })
}

func (n *lockNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fsys.openAttr(n.path, f, &out.Attr)
	return 0
}

// openAttr fills out for the lock at p as seen through the open file f: a
// file that holds the lock describes the lock it holds from memory, as the
// lock knows it (no read of the record, no judging of its holder: this is
// the open's CREATE and the SETATTR of O_TRUNC, on every cycle); other
// files show the lock as it is on disk (lockAttrOfOpen), and so does a
// lock in a lease directory, whose lease's end is on disk. Reads render
// the record on disk: a holder whose lock was broken and taken by another
// sees the new holder there.
func (fsys *filesystem) openAttr(p string, f fs.FileHandle, out *fuse.Attr) {
	if h, ok := f.(*holdHandle); ok && h.lock.LeaseDuration() == 0 {
		fsys.heldAttr(h.lock.Holder(), out)
		return
	}
	fsys.lockAttrOfOpen(p, out)
}

// Setattr accepts what programs do to a file they open for writing and
// changes nothing: truncation to 0 (the SETATTR that follows an open with
// O_TRUNC when the kernel does not pass O_TRUNC along, ftruncate) and times
// (touch). A lock file's owner and mode are its holder's business: EPERM.
func (n *lockNode) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if in.Valid&(fuse.FATTR_MODE|fuse.FATTR_UID|fuse.FATTR_GID) != 0 {
		return syscall.EPERM
	}
	if size, ok := in.GetSize(); ok && size != 0 {
		return syscall.EINVAL
	}
	n.fsys.openAttr(n.path, f, &out.Attr)
	return 0
}

// lockAttr fills out with how the lock at p looks now. Held: a regular file
// with P.nfs_lock's mode and owner, the rendered record's length as size
// and the time it was acquired as mtime. Free: the leftover file P with size
// 0. No file at all: ENOENT. A lock that an open file of this mount holds
// is described from memory (see openAttr): the kernel looks the name up
// at every open, also when the opener's previous close has yet to release it.
func (fsys *filesystem) lockAttr(p string, out *fuse.Attr) syscall.Errno {
	if held := fsys.holderOf(p); held != nil && held.lock.LeaseDuration() == 0 {
		fsys.heldAttr(held.lock.Holder(), out)
		return 0
	}
	h, err := nfslock.Inspect(p)
	switch {
	case err == nil:
		fsys.heldAttr(h, out)
		return 0
	case !errors.Is(err, nfslock.ErrNotLocked):
		// Not a record (a symbolic link, a FIFO), or the backing store
		// failed: an operator must look.
		fsys.log.WithError(err).Warn("cannot read a lock")
		fsys.events.BackingError(OpStat, errnoOf(err))
		return errnoOf(err)
	}
	if errno, shared := fsys.sharedAttr(p, out); shared {
		return errno
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	out.Size = 0
	fileAttr(out)
	return 0
}

// heldAttr fills out with how a lock that h holds looks: a regular file
// with P.nfs_lock's mode and owner, the rendered record's length as size and
// the time it was acquired as mtime.
func (fsys *filesystem) heldAttr(h nfslock.Holder, out *fuse.Attr) {
	out.FromStat(h.File.Sys().(*syscall.Stat_t))
	out.Size = uint64(len(fsys.format.render(h)))
	out.SetTimes(nil, &h.Since, nil)
	fileAttr(out)
}

// lockAttrOfOpen is lockAttr for a file that is open, which the kernel
// expects to have attributes even when the lock is free and has no file
// left: then it looks like an empty file that was removed (no links).
func (fsys *filesystem) lockAttrOfOpen(p string, out *fuse.Attr) {
	if fsys.lockAttr(p, out) == 0 {
		return
	}
	now := time.Now()
	*out = fuse.Attr{Mode: syscall.S_IFREG | 0o644}
	out.SetTimes(&now, &now, &now)
}

// fileAttr makes out a lock file's: a regular file with one name and the
// inode number of the node (set by go-fuse), whatever the backing file is.
func fileAttr(out *fuse.Attr) {
	out.Mode = syscall.S_IFREG | out.Mode&0o7777
	out.Nlink = 1
	out.Ino = 0
}

// removeLock is rm of a lock file. A held lock gives EBUSY; a free lock's
// leftover file P is removed if it is a lock record, and anything else
// there (a data file, a symbolic link) never is: EPERM. A lock whose
// holder on this host is dead is cleaned up, as the next acquirer would
// (safely against others doing the same), and removed.
func (fsys *filesystem) removeLock(p string) syscall.Errno {
	h, err := nfslock.Inspect(p)
	switch {
	case errors.Is(err, nfslock.ErrNotLocked):
		if readers, err := nfslock.Readers(p); err != nil || len(readers) > 0 {
			return syscall.EBUSY // held shared, or its shared holders cannot be listed
		}
		err := nfslock.RemoveLeftover(p)
		if errors.Is(err, nfslock.ErrNotRecord) {
			fsys.log.WithError(err).WithField("path", p).Warn("refused to remove a backing file that is not a lock")
			return syscall.EPERM
		}
		return fs.ToErrno(err)
	case err != nil:
		return fsys.removeFailed(err)
	case h.State != nfslock.HolderDead:
		return syscall.EBUSY
	}
	lock, err := nfslock.TryLock(p, fsys.staleCleanup())
	if errors.Is(err, nfslock.ErrLocked) {
		return syscall.EBUSY // taken meanwhile, or still held by an open file of ours
	}
	if err != nil {
		return fsys.removeFailed(err)
	}
	if err := lock.Unlock(); err != nil {
		return fsys.removeFailed(err)
	}
	fsys.log.WithFields(logrus.Fields{"path": p, "pid": h.Record.Pid, "message": h.Record.Message}).Info("removed a stale lock")
	return 0
}

// removeFailed tells the mount's Events of a failed rm and returns its errno.
func (fsys *filesystem) removeFailed(err error) syscall.Errno {
	errno := errnoOf(err)
	fsys.events.BackingError(OpRemove, errno)
	return errno
}
