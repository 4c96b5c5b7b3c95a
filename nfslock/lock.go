//go:build linux

package nfslock

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// A Lock is a lock held by this process (for itself, or for the local
// process its record names). Its methods are safe for concurrent use.
//
// Holding a Lock is a claim, not a guarantee that lasts: an operator on any
// host can break the lock (Break, nfslock break --force), and another
// process may take it at once. Nothing tells the holder; it learns it only
// at its next call on the Lock (Unlock, SetMessage, SetOwner), which fails
// with an error matching ErrNotLocked, or ErrLocked naming the new holder.
type Lock struct {
	path     string // normalized (NormalizePath): the lock's files and its key in this process
	acquired time.Time
	log      logrus.FieldLogger

	mu       sync.Mutex
	rec      Record
	data     []byte      // rec as it is on disk in P.nfs_lock
	dev, ino uint64      // P.nfs_lock's identity: release checks it is still ours
	file     os.FileInfo // P.nfs_lock's attributes when written (see Holder)
	since    time.Time   // P.nfs_lock's modification time: when the lock was taken
	ownsP    bool        // P is our record's second name, to remove on release
	// marked: P.nfs_readers is a name of our record, which proves that no
	// shared holder holds the lock (see shared.go); removed on release.
	marked   bool
	vouched  bool // this process vouches for the lock (WithVouch, vouch.go)
	released bool

	lease *heldLease // nil outside a lease directory (see LeaseFile)
}

// TryLock takes the lock on path if it is free (or stale), without waiting.
// A lock held by someone else gives an error matching ErrLocked, a
// *HeldError naming the holder; when that holder is this very process
// (another process took the lock in its name, with WithOwner) the error
// also matches syscall.EDEADLK. A path that cannot be a lock gives one
// matching ErrInvalidPath (see NormalizePath). Other errors are failures of
// the filesystem, naming the path.
//
// A lock that shared holders hold (TryLockShared) is held too: the error
// names one of them.
func TryLock(path string, opts ...Option) (*Lock, error) {
	l, err := tryLockGate(path, true, opts...)
	if err != nil {
		return nil, err
	}
	if err := l.refuseReaders(); err != nil {
		return nil, err
	}
	return l, nil
}

// tryLockGate is TryLock without regard to shared holders: P.nfs_lock
// alone, as a reader takes it for a moment (see shared.go). An exclusive
// one tries to mark the lock as such (see becomeP).
func tryLockGate(path string, exclusive bool, opts ...Option) (*Lock, error) {
	path, err := NormalizePath(path)
	if err != nil {
		return nil, err
	}
	if l := heldLocks.get(path); l != nil {
		// Held by this process: never judged from the disk, where its
		// record may name a process that has exited while the lock is
		// still in use (a FUSE opener whose forked child keeps the file).
		return nil, l.heldError()
	}
	o := buildOptions(opts)
	rec, err := o.record()
	if err != nil {
		return nil, err
	}
	l, err := tryAcquire(path, rec, o.onStale, exclusive)
	if err != nil {
		return nil, err
	}
	if err := l.activate(o, 0); err != nil {
		return nil, err
	}
	return l, nil
}

// tryAcquire makes one attempt to take the lock at p for rec: the
// protocol's steps (docs/design.md, "Acquiring"), with the held-lock check moved after the link, so that a free
// lock costs no read. A stale lock is cleaned up and the attempt repeated
// once; onStale is told of it. An exclusive attempt tries to mark the lock
// as exclusive (see becomeP). p is normalized.
func tryAcquire(p string, rec Record, onStale func(Holder), exclusive bool) (*Lock, error) {
	if err := checkName(p); err != nil {
		return nil, err
	}
	data, err := encodeFor(p, rec)
	if err != nil {
		return nil, err
	}
	lease, err := dirLease(p)
	if err != nil {
		return nil, err
	}
	const maxTries = 3 // the lock may be released, or cleaned, under our feet
	cleaned := false
	for try := 1; ; try++ {
		start := now()
		a, err := writeAttempt(p, data)
		if err != nil {
			return nil, createError(p, err)
		}
		linked, err := a.linkTo(lockFile(p))
		if linked {
			ownsP, marked := a.becomeP(p, exclusive)
			l := &Lock{path: p, rec: rec, data: data, dev: a.dev, ino: a.ino, file: a.fi, since: a.mtime, ownsP: ownsP, marked: marked}
			if lease > 0 {
				if err := l.startLease(lease, start, a.mtime); err != nil {
					return nil, err
				}
			}
			return l, nil
		}
		os.Remove(a.name)
		if err != nil {
			return nil, pathError(p, err)
		}
		h, id, err := readLockFile(p)
		switch {
		// ESTALE: on NFS, the lock file was removed on the server while
		// this host read it (another host released it): the lock changed
		// under us, as when it is gone.
		case (errors.Is(err, ErrNotLocked) || errors.Is(err, syscall.ESTALE)) && try < maxTries:
			continue
		case errors.Is(err, ErrNotLocked) || errors.Is(err, syscall.ESTALE):
			return nil, &HeldError{Path: p}
		case err != nil:
			return nil, err
		case h.State == HolderDead && !cleaned && try < maxTries:
			removed, err := removeIfUnchanged(p, id, h.Raw, fmt.Sprintf("cleaning up the stale lock of pid %d on %s, which is gone", h.Record.Pid, h.Record.Host))
			if err != nil {
				return nil, err
			}
			if removed {
				onStale(h)
			}
			cleaned = true
			continue
		case h.State == HolderAlive && h.Record.Pid == os.Getpid() && abandonedHere(p, id.ino, h.Raw) && try < maxTries:
			if _, err := removeIfUnchanged(p, id, h.Raw, "removing a lock this process took but could not complete nor release"); err != nil {
				return nil, err
			}
			abandonedLocks.Delete(p)
			continue
		case h.State == HolderAlive && h.Record.Pid == os.Getpid() && !lostHere(p, id.ino, h.Raw):
			return nil, fmt.Errorf("%w: it is held in the name of this very process, taken for it by another (an enclosing 'nfslock PATH COMMAND', or an open through nfslockfs), and is released only when this process ends; waiting for it would never end: %w",
				h.heldError(p, id), syscall.EDEADLK)
		case h.Lease != nil && h.State != HolderDead:
			broken, retryAt, err := breakIfExpired(p, h, id)
			if err != nil {
				return nil, err
			}
			if broken && try < maxTries {
				continue
			}
			held := h.heldError(p, id)
			held.leaseEnd = retryAt
			return nil, held
		}
		return nil, h.heldError(p, id)
	}
}

// activate registers a freshly taken lock with the process, vouches for it
// if o says so, and logs it. A failed vouch releases the lock.
func (l *Lock) activate(o *options, waited time.Duration) error {
	l.acquired = time.Now()
	l.log = o.log
	if o.vouch {
		if err := vouch(l.dev, l.ino, l.data, l); err != nil {
			l.Unlock()
			return fmt.Errorf("nfslock: %s: vouching for the lock on this host: %w", l.path, err)
		}
		l.vouched = true
	}
	heldLocks.add(l)
	if l.lease != nil {
		renewals.add(l.lease)
	}
	l.log.WithFields(logrus.Fields{"path": l.path, "pid": l.rec.Pid, "host": l.rec.Host, "waited": waited}).Info("lock acquired")
	return nil
}

// Unlock releases the lock: under a lock of this host that stale-lock
// cleaners take too, it checks that P.nfs_lock is still the file this Lock
// created, with the record it wrote, and only then removes P (if the
// acquisition made it) and P.nfs_lock. A lock removed by someone else gives
// an error matching ErrNotLocked; one that someone else now holds (after
// breaking ours) an error matching ErrLocked, and nothing is removed. After a filesystem
// error the lock is still held and Unlock may be called again.
func (l *Lock) Unlock() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("nfslock: %s: already released: %w", l.path, ErrNotLocked)
	}
	if err := l.leaseErr(); err != nil {
		l.forget()
		return err
	}
	fl, err := l.openOwned()
	if err != nil {
		if errors.Is(err, ErrNotLocked) || errors.Is(err, ErrLocked) {
			l.forget()
		}
		return err
	}
	fl.closeFile()
	err = l.removeFiles()
	fl.Close()
	// ENOENT, with the lock just checked to be ours: most likely a
	// retransmitted REMOVE whose first reply was lost. The lock is gone.
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("nfslock: %s: releasing: %w", l.path, err)
	}
	l.forget()
	l.log.WithFields(logrus.Fields{"path": l.path, "pid": l.rec.Pid, "host": l.rec.Host, "held": time.Since(l.acquired)}).Info("lock released")
	return nil
}

// removeFiles removes the files of l, checked to be still ours: its mark,
// P if the acquisition made it (their fate never fails a release), and
// then P.nfs_lock, whose removal's error it returns. Called with l.mu held.
func (l *Lock) removeFiles() error {
	if l.marked {
		syscall.Unlink(readersDir(l.path)) // never a directory: no shared holder got in while we held
	}
	if l.ownsP {
		os.Remove(l.path)
	}
	return os.Remove(lockFile(l.path))
}

// openOwned flocks P.nfs_lock (see flockedLock) and verifies that it is
// still the file and the record this Lock wrote. Called with l.mu held.
func (l *Lock) openOwned() (*flockedLock, error) {
	fl, err := openFlocked(l.path)
	if errors.Is(err, ErrNotLocked) {
		return nil, fmt.Errorf("nfslock: %s: our lock was removed by someone else: %w", l.path, ErrNotLocked)
	}
	if err != nil {
		return nil, err
	}
	if fl.id.dev != l.dev || fl.id.ino != l.ino || !bytes.Equal(fl.Raw, l.data) {
		fl.Close()
		return nil, fmt.Errorf("%w; our lock was broken and taken over", judge(fl.Holder).heldError(l.path, fl.id))
	}
	return fl, nil
}

// abandonedLocks are the lock files this process made but gave up, by path
// (see Lock.abandon).
var abandonedLocks sync.Map // path → abandonedLock

type abandonedLock struct {
	ino  uint64
	data []byte
}

// abandon gives up l, an acquisition that could not be completed and whose
// release failed (a filesystem error; on a soft NFS mount, the server not
// answering): the caller got an error, so nobody will release l. This
// process forgets it, so that it does not wait for itself, and remembers
// its file, which names this process, so that its next attempt on the path
// removes it (see tryAcquire) rather than taking it for a lock held in its
// name by another process. Until then, or until this process ends, the
// lock stays held on disk: other processes see it held by this one.
func (l *Lock) abandon() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return
	}
	abandonedLocks.Store(l.path, abandonedLock{ino: l.ino, data: l.data})
	l.forget()
}

// releaseTries is how many times releaseOrAbandon tries a release, 10 ms
// apart and doubling, before it abandons the lock.
const releaseTries = 3

// releaseOrAbandon releases l, an acquisition the caller gives up on. A
// release that fails on a filesystem error (ESTALE; EIO of a soft mount
// whose server does not answer for a moment) is tried again a few times;
// if it still fails, l is abandoned (see abandon), which the log says
// (doing names the release there), and Unlock's error is returned. The
// caller is told of a failure: left registered and vouched for, l would
// stay held for the life of this process, with nobody to release it.
func (l *Lock) releaseOrAbandon(doing string) error {
	delay := 10 * time.Millisecond
	var err error
	for try := 1; try <= releaseTries; try++ {
		if err = l.Unlock(); err == nil || l.isReleased() {
			return err
		}
		if try < releaseTries {
			time.Sleep(delay)
			delay *= 2
		}
	}
	l.log.WithError(err).WithField("path", l.path).Warn(doing + " failed; abandoned: it stays on disk in this process's name until the process's next attempt on the path or its end")
	l.abandon()
	return err
}

// isReleased reports whether l was released or forgotten.
func (l *Lock) isReleased() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.released
}

// abandonedHere reports whether the lock file of inode ino holding raw is
// one this process abandoned.
func abandonedHere(p string, ino uint64, raw []byte) bool {
	v, ok := abandonedLocks.Load(p)
	return ok && v.(abandonedLock).ino == ino && bytes.Equal(v.(abandonedLock).data, raw)
}

// forget marks the lock released and hands it to the next waiter of this
// process. Called with l.mu held.
func (l *Lock) forget() {
	endVouch(&l.vouched, l.dev, l.ino, l.data, l)
	if l.lease != nil {
		l.lease.end()
	}
	l.released = true
	heldLocks.remove(l)
	waiters.wakeHead(l.path)
}

// heldError describes the lock as held by this Lock.
func (l *Lock) heldError() *HeldError {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &HeldError{Path: l.path, Holder: Holder{Record: l.rec, Raw: l.data, Since: l.acquired, State: HolderAlive}}
}

// Holder describes the lock as Inspect would find it while it is ours,
// from memory, with no I/O: its record, alive, held since the lock file's
// modification time, and as File the lock file's attributes as the
// acquisition (or the last record change) wrote it: its mode, owner and
// size, but its link count and times from before it was linked. Lease is nil: in a lease directory, Inspect says when the
// lease ends. Holder says nothing of whether the lock is still ours: see
// Err, and Unlock.
func (l *Lock) Holder() Holder {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Holder{Record: l.rec, Raw: l.data, Since: l.since, File: l.file, State: HolderAlive}
}

// Path returns the lock's path, normalized (see NormalizePath).
func (l *Lock) Path() string { return l.path }

// Record returns the holder record as it is on disk.
func (l *Lock) Record() Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec
}

// SetMessage replaces the record's message. The new record is renamed over
// the old one, so every host sees the old or the new one, never a mix, and
// the lock exists throughout; the lock file keeps its modification time
// (when the lock was taken). It fails like Unlock if the lock is no longer
// ours.
func (l *Lock) SetMessage(msg string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec := l.rec
	rec.Message = msg
	return l.replaceRecord(rec)
}

// SetOwner names the local process pid as the holder, with its start time,
// replacing the record as SetMessage does: from then on the lock is stale
// when pid dies. It is for a lock whose owner is known only after it was
// taken; when the owner is known before, WithOwner names it from the start
// (the CLI and the mount do so). It fails like Unlock if the lock is no
// longer ours.
func (l *Lock) SetOwner(pid int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec, err := recordFor(pid, l.rec.Message)
	if err != nil {
		return err
	}
	return l.replaceRecord(rec)
}

// replaceRecord writes rec to a new file and renames it over P.nfs_lock:
// the lock exists at every instant, and a reader anywhere sees the old
// record or the new one, never a torn one, and the lock file's mtime (when
// the lock was taken) is kept. P, if the acquisition made it, gets the new
// record the same way, best effort. Called with l.mu held.
func (l *Lock) replaceRecord(rec Record) error {
	if l.released {
		return fmt.Errorf("nfslock: %s: already released: %w", l.path, ErrNotLocked)
	}
	if err := l.leaseErr(); err != nil {
		return err
	}
	data, err := encodeFor(l.path, rec)
	if err != nil {
		return err
	}
	a, err := writeAttempt(l.path, data)
	if err != nil {
		return pathError(l.path, err)
	}
	fl, err := l.openOwned()
	if err != nil {
		os.Remove(a.name)
		return err
	}
	defer fl.Close()
	// The lock file's mtime says when the lock was taken (held-since, and
	// stat through the mount): the new record keeps it. Best effort.
	os.Chtimes(a.name, time.Time{}, fl.Since)
	copyForP := attemptFile(l.path)
	haveCopy := false
	if l.ownsP {
		haveCopy = os.Link(a.name, copyForP) == nil
		if !haveCopy {
			os.Remove(copyForP) // the link may have happened, its reply lost
		}
	}
	discard := func() { // the new record, by both its names, on a failure
		os.Remove(a.name)
		if haveCopy {
			os.Remove(copyForP)
		}
	}
	if l.vouched {
		if err := vouch(a.dev, a.ino, data, l); err != nil {
			discard()
			return fmt.Errorf("nfslock: %s: vouching for the new record on this host: %w", l.path, err)
		}
	}
	if l.lease != nil {
		l.lease.replacing(a.ino)
	}
	if err := a.renameTo(lockFile(l.path)); err != nil {
		if l.vouched {
			unvouch(a.dev, a.ino, data, l)
		}
		discard()
		if l.lease != nil {
			l.lease.replaced(l.ino, l.data)
		}
		return pathError(l.path, err)
	}
	if l.lease != nil {
		l.lease.replaced(a.ino, data)
		l.lease.redeclare(a.ino)
	}
	if haveCopy && rename(copyForP, l.path) != nil {
		os.Remove(copyForP)
	}
	if l.vouched {
		unvouch(l.dev, l.ino, l.data, l)
	}
	l.rec, l.data, l.dev, l.ino, l.file = rec, data, a.dev, a.ino, a.fi
	return nil
}

// encodeFor encodes the record for the lock at p, refusing one that no
// reader would accept: longer than MaxRecordSize (a message of more than
// about 16 KB of non-printable bytes, each written as four).
func encodeFor(p string, rec Record) ([]byte, error) {
	data := rec.Encode()
	if len(data) > MaxRecordSize {
		return nil, fmt.Errorf("nfslock: %s: the record would be %d bytes, more than readers accept (%d); shorten the message: %w",
			p, len(data), MaxRecordSize, syscall.E2BIG)
	}
	return data, nil
}

// heldLocks are the locks this process holds, by normalized path: for Core's
// Unlock(path) and UnlockAll, and so waiters need not poll a lock that a
// release of this process will hand them.
var heldLocks = lockRegistry{m: make(map[string]*Lock)}

type lockRegistry struct {
	mu sync.Mutex
	m  map[string]*Lock
}

func (r *lockRegistry) add(l *Lock) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[l.path] = l
}

func (r *lockRegistry) remove(l *Lock) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[l.path] == l {
		delete(r.m, l.path)
	}
}

func (r *lockRegistry) get(key string) *Lock {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[key]
}

func (r *lockRegistry) all() []*Lock {
	r.mu.Lock()
	defer r.mu.Unlock()
	locks := make([]*Lock, 0, len(r.m))
	for _, l := range r.m {
		locks = append(locks, l)
	}
	return locks
}
