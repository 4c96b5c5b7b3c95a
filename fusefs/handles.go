//go:build linux

package fusefs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/nfslockfs/nfslockfs/nfslock"
	"github.com/sirupsen/logrus"
)

// A holdHandle is an open file that holds a lock. The lock belongs to the
// open file, as with flock(2): descriptors that share it (dup, fork) share
// the lock, and the kernel's RELEASE after the last close releases it.
// Reading it shows its own record; writing it sets the message.
type holdHandle struct {
	fsys     *filesystem
	lock     *nfslock.Lock
	path     string
	owner    caller
	since    time.Time     // when the lock was taken
	broken   atomic.Bool   // the lock was found broken (told to Events once)
	lost     atomic.Bool   // the lock's lease was found lost (told to Events once)
	closedAt atomic.Int64  // UnixNano of the last FLUSH: a close of one of its descriptors
	released chan struct{} // closed when the lock has been released
	reader   recordReader
	// newFile: opened with O_CREAT|O_EXCL, as programs create a file to
	// fill (cp, mv, install, rsync's temporary files, mkstemp). A lock
	// keeps no data, so such a file's writes fail (see Write).
	newFile bool
}

var (
	_ = (fs.FileReader)((*holdHandle)(nil))
	_ = (fs.FileWriter)((*holdHandle)(nil))
	_ = (fs.FileFlusher)((*holdHandle)(nil))
	_ = (fs.FileReleaser)((*holdHandle)(nil))
)

func newHoldHandle(fsys *filesystem, lock *nfslock.Lock, path string, owner caller) *holdHandle {
	return &holdHandle{fsys: fsys, lock: lock, path: path, owner: owner, since: time.Now(), released: make(chan struct{})}
}

// noteBroken tells the mount's Events that h's lock was found broken, the
// first time it is.
func (h *holdHandle) noteBroken() {
	if !h.broken.Swap(true) {
		h.fsys.events.Broken()
	}
}

// noteLost tells the mount's Events that h's lock lost its lease, the
// first time it is found lost. (The library logged the loss when it
// happened.)
func (h *holdHandle) noteLost() {
	if !h.lost.Swap(true) {
		h.fsys.events.LeaseLost()
	}
}

// lostErrno is ENOLCK once h's lock has lost its lease (this file no
// longer holds the lock), and 0 before.
func (h *holdHandle) lostErrno() syscall.Errno {
	if errors.Is(h.lock.Err(), nfslock.ErrLost) {
		h.noteLost()
		return syscall.ENOLCK
	}
	return 0
}

// Read shows the lock's record; once the lock's lease is lost it fails with
// ENOLCK.
func (h *holdHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if errno := h.lostErrno(); errno != 0 {
		return nil, errno
	}
	return h.reader.read(h.fsys, h.path, dest, off)
}

// Write sets the lock's message to the written text, less one trailing
// newline; each write replaces the message. What the lock cannot keep
// fails loudly, so that a copy onto the mount fails instead of losing its
// data: a text longer than nfslock.MaxMessageLen gives EFBIG, and any write
// on a file opened with O_EXCL (newFile) EPERM. The message stays as it was.
func (h *holdHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	log := h.fsys.log.WithFields(logrus.Fields{"path": h.path, "pid": h.owner.pid, "command": h.owner.command, "bytes": len(data)})
	if h.newFile {
		log.Warn("refused a write on a lock file opened with O_EXCL, as programs create a file to fill: a lock keeps no data")
		return 0, syscall.EPERM
	}
	msg := strings.TrimSuffix(string(data), "\n")
	if len(msg) > nfslock.MaxMessageLen {
		log.Warn("refused a write longer than a lock's message can be")
		return 0, syscall.EFBIG
	}
	if err := h.lock.SetMessage(msg); err != nil {
		log.WithError(err).Warn("setting the lock's message failed")
		if errors.Is(err, nfslock.ErrLost) {
			h.noteLost()
			return 0, syscall.ENOLCK // this file no longer holds the lock
		}
		if errors.Is(err, nfslock.ErrNotLocked) || errors.Is(err, nfslock.ErrLocked) {
			h.noteBroken()
			return 0, syscall.ENOLCK // the lock was broken: this file no longer holds it
		}
		h.fsys.events.BackingError(OpWrite, errnoOf(err))
		return 0, errnoOf(err)
	}
	return uint32(len(data)), 0
}

// Flush comes with every close(2) of a descriptor of the open file,
// including dup'ed and inherited ones, so it cannot release the lock; it
// notes the time for the "release timing" rule (see tryLock).
func (h *holdHandle) Flush(ctx context.Context) syscall.Errno {
	h.closedAt.Store(time.Now().UnixNano())
	h.fsys.closedByOwner(ctx, h.path)
	return 0
}

// Release comes once, after the last close, from the kernel (pid 0).
func (h *holdHandle) Release(ctx context.Context) syscall.Errno {
	h.fsys.release(h)
	return 0
}

// awaitRelease waits up to releaseGrace for h's lock to be released if one
// of h's descriptors was closed within closeWindow (its RELEASE may be on
// its way). A nil h has nothing to wait for.
func (h *holdHandle) awaitRelease() {
	if h == nil {
		return
	}
	at := h.closedAt.Load()
	if at == 0 || time.Since(time.Unix(0, at)) >= closeWindow {
		return
	}
	t := time.NewTimer(releaseGrace)
	defer t.Stop()
	select {
	case <-h.released:
	case <-t.C:
	}
}

// A plainHandle is an open file that took no lock by its open: a
// read-only one, which never blocks, or, on a mount with NoLockOnOpen, any.
// flock(2) and fcntl(2) on it take the lock (see filelocks.go), its writes
// set the message of the lock taken so, and its FLUSH and RELEASE let go of
// what they took.
type plainHandle struct {
	fsys   *filesystem
	path   string
	reader recordReader
}

var (
	_ = (fs.FileReader)((*plainHandle)(nil))
	_ = (fs.FileWriter)((*plainHandle)(nil))
	_ = (fs.FileFlusher)((*plainHandle)(nil))
	_ = (fs.FileReleaser)((*plainHandle)(nil))
)

// Write sets the message of the lock that this open file, or the writing
// process, took by flock(2) or fcntl(2), as a write on a holding
// descriptor does; without one it fails with ENOLCK.
func (h *plainHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	c, _ := callerOf(ctx)
	hold := h.fsys.fileLockFor(h, c.pid)
	if hold == nil {
		return 0, syscall.ENOLCK
	}
	return hold.Write(ctx, data, off)
}

// Flush comes with every close(2) of one of its descriptors: the closing
// process's POSIX lock on the file goes, and the close is noted for the
// "release timing" rule (see tryLock).
func (h *plainHandle) Flush(ctx context.Context) syscall.Errno {
	h.fsys.noteClose(h)
	h.fsys.closedByOwner(ctx, h.path)
	return 0
}

// Release comes after the last close: the flock and OFD locks taken
// through it go.
func (h *plainHandle) Release(ctx context.Context) syscall.Errno {
	h.fsys.releaseFileLocksOf(h)
	return 0
}

func (h *plainHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return h.reader.read(h.fsys, h.path, dest, off)
}

// recordReader serves the reads of one open file (opened with direct I/O,
// so every read(2) reaches it). A read at offset 0 renders the record as it
// is now; reads further on continue that rendering, so that one pass over
// the file (cat) sees one record even if it changes meanwhile.
type recordReader struct {
	mu   sync.Mutex
	text []byte
}

func (r *recordReader) read(fsys *filesystem, path string, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if off == 0 || r.text == nil {
		text, err := fsys.recordText(path)
		if err != nil {
			fsys.events.BackingError(OpRead, errnoOf(err))
			return nil, errnoOf(err)
		}
		r.text = text
	}
	if off >= int64(len(r.text)) {
		return fuse.ReadResultData(nil), 0
	}
	end := min(off+int64(len(dest)), int64(len(r.text)))
	return fuse.ReadResultData(r.text[off:end]), 0
}
