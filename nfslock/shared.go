//go:build linux

package nfslock

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// Shared locks (docs/design.md, "Shared locks"): a shared holder, a reader,
// takes P.nfs_lock for a moment (the gate), writes its record as
// P.nfs_readers/P.<32 hex>.nfs_reader, and lets the gate go; it holds the
// shared lock while that file exists. Every exclusive acquisition of this
// package takes P.nfs_lock and then renames its attempt file to
// P.nfs_readers: the server refuses that while P.nfs_readers is a
// directory, and only then does the writer list it and wait until no live
// reader file is left. So readers and writers exclude each other, and a
// writer waiting for readers keeps new readers out. Core's processes see
// only P.nfs_lock: they exclude our writers, not our readers.

// ReaderSuffix ends the name of a shared holder's reader file,
// P.<32 hex>.nfs_reader in the directory P.nfs_readers, which holds its
// record.
const ReaderSuffix = ".nfs_reader"

// ReadersDirSuffix ends the name of the directory of a lock's shared
// holders, P.nfs_readers. While no shared holder holds the lock it is
// absent, or a file: an exclusive holder's mark (see becomeP).
const ReadersDirSuffix = ".nfs_readers"

// readersDir returns P.nfs_readers for the lock path p.
func readersDir(p string) string { return p + ReadersDirSuffix }

// readerFile returns a fresh reader file name for the lock path p.
func readerFile(p string) string {
	var b [16]byte
	rand.Read(b[:])
	return filepath.Join(readersDir(p), filepath.Base(p)+"."+hex.EncodeToString(b[:])+ReaderSuffix)
}

// isReaderFileOf reports whether name is a reader file of the lock whose
// last path element is base.
func isReaderFileOf(name, base string) bool {
	return len(name) == len(base)+1+32+len(ReaderSuffix) && strings.HasPrefix(name, base+".") && isReaderFile(name)
}

// isReaderFile reports whether the base name is a reader file of some lock.
func isReaderFile(name string) bool {
	stem, ok := strings.CutSuffix(name, ReaderSuffix)
	return ok && len(stem) > 33 && stem[len(stem)-33] == '.' && isLowerHex(stem[len(stem)-32:], 32)
}

// A SharedLock is a shared lock held by this process (for itself, or for
// the local process its record names): any number of them, on any hosts,
// hold one lock at once, and no exclusive Lock does meanwhile. Its methods
// are safe for concurrent use.
type SharedLock struct {
	path     string // normalized
	name     string // its reader file
	rec      Record
	data     []byte
	dev, ino uint64
	acquired time.Time
	log      logrus.FieldLogger
	vouched  bool // this process vouches for the reader file (WithVouch)

	mu       sync.Mutex
	released bool
}

// TryLockShared takes a shared hold of the lock on path if no exclusive
// holder holds it or waits for it, without waiting. Otherwise the error
// matches ErrLocked, a *HeldError naming the exclusive holder. Other errors
// are failures of the filesystem, naming the path.
func TryLockShared(path string, opts ...Option) (*SharedLock, error) {
	gate, err := tryLockGate(path, false, opts...)
	if err != nil {
		return nil, err
	}
	return gate.admitReader(0)
}

// AcquireShared takes a shared hold of the lock on path, waiting while an
// exclusive holder holds it or waits for it (in the same queue as Acquire),
// until ctx ends or a permanent error; its errors are Acquire's.
func AcquireShared(ctx context.Context, path string, opts ...Option) (*SharedLock, error) {
	start := time.Now()
	gate, err := acquireGate(ctx, path, false, opts...)
	if err != nil {
		return nil, err
	}
	return gate.admitReader(time.Since(start))
}

// admitReader turns the gate, P.nfs_lock held for a reader, into that
// reader's file, and lets the gate go; a gate it cannot let go is
// abandoned (see releaseOrAbandon), whether or not the reader got in.
func (gate *Lock) admitReader(waited time.Duration) (*SharedLock, error) {
	gate.mu.Lock()
	p, rec, data, log, vouched := gate.path, gate.rec, gate.data, gate.log, gate.vouched
	gate.mu.Unlock()
	s := &SharedLock{path: p, name: readerFile(p), rec: rec, data: data, log: log, vouched: vouched}
	a, err := writeAttempt(p, data)
	if err == nil {
		if err = registerReader(p, a, s.name); err != nil {
			os.Remove(a.name)
		} else if vouched {
			if err = vouch(a.dev, a.ino, data, s); err != nil {
				os.Remove(s.name)
			}
		}
	}
	if uerr := gate.releaseOrAbandon("releasing the gate of a shared acquisition"); err == nil && uerr != nil {
		// The reader file exists: release it too, so that nothing is left
		// held by a caller that was told of a failure.
		os.Remove(s.name)
		if vouched {
			unvouch(a.dev, a.ino, data, s)
		}
		return nil, uerr
	}
	if err != nil {
		return nil, pathError(p, err)
	}
	s.dev, s.ino = a.dev, a.ino
	s.acquired = time.Now()
	s.register(true)
	log.WithFields(logrus.Fields{"path": p, "pid": rec.Pid, "host": rec.Host, "waited": waited}).Info("shared lock acquired")
	return s, nil
}

// registerReader renames the attempt file to the reader file name, in the
// directory P.nfs_readers, making that directory first if it is missing or
// is a former exclusive holder's mark (a record file: anything else there
// is never removed, and gives an error matching ErrInvalidPath). The
// caller holds the gate, so no writer holds the lock and every mark there
// is a leftover. The server
// refuses a rename into a directory that is gone (the last reader of
// another host removed it meanwhile): then it is made again.
func registerReader(p string, a attempt, name string) error {
	dir := readersDir(p)
	// A rename into a symbolic link to a directory would succeed, and a
	// writer's mark would replace the link without meeting the reader.
	err := checkReadersDir(dir)
	if err != nil {
		return err
	}
	for range 3 {
		if err = a.renameTo(name); err == nil || !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ENOTDIR) {
			return err
		}
		if errors.Is(err, syscall.ENOTDIR) && isRecordFile(dir) {
			syscall.Unlink(dir) // a mark left by an exclusive holder that died
		}
		merr := os.Mkdir(dir, 0o777)
		if errors.Is(merr, os.ErrExist) {
			merr = checkReadersDir(dir)
		}
		if merr != nil {
			return merr
		}
	}
	return err
}

// checkReadersDir checks that dir, P.nfs_readers, is absent, a directory
// itself, or a mark (see isRecordFile), which the next rename meets:
// anything else (a symbolic link, whose target the
// readers would use while a writer's mark replaced the link, or a file of
// data) is refused, an error matching ErrInvalidPath, and left alone.
func checkReadersDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil // removed meanwhile: the next rename says so
	}
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().IsRegular() && isRecordFile(dir) {
		return nil
	}
	what := "a file of data"
	if fi.Mode()&os.ModeSymlink != 0 {
		what = "a symbolic link"
	} else if !fi.Mode().IsRegular() {
		what = "a special file"
	}
	return fmt.Errorf("%s is %s, not the directory of shared holders nor a mark; remove it: %w", dir, what, ErrInvalidPath)
}

// Path returns the lock's path, normalized.
func (s *SharedLock) Path() string { return s.path }

// Record returns the shared holder's record as it is on disk.
func (s *SharedLock) Record() Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec
}

// Unlock releases the shared hold: it removes its reader file, under the
// host's lock and after checking that the file is still the one it wrote.
// A reader file removed by someone else (an operator's break) gives an
// error matching ErrNotLocked. After a filesystem error the hold is still
// held and Unlock may be called again.
func (s *SharedLock) Unlock() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return fmt.Errorf("nfslock: %s: shared lock already released: %w", s.path, ErrNotLocked)
	}
	removed, err := withReaderFile(s.name, removeReader(s.name, func(fi os.FileInfo, _ []byte) bool { return sameInode(fi, s.dev, s.ino) }))
	if err != nil {
		return err
	}
	// The last one out removes the directory, so that the next writer
	// finds it absent; a reader getting in meanwhile makes it again.
	syscall.Rmdir(readersDir(s.path))
	endVouch(&s.vouched, s.dev, s.ino, s.data, s)
	s.released = true
	s.register(false)
	if !removed {
		return fmt.Errorf("nfslock: %s: our shared lock was removed by someone else: %w", s.path, ErrNotLocked)
	}
	s.log.WithFields(logrus.Fields{"path": s.path, "pid": s.rec.Pid, "host": s.rec.Host, "held": time.Since(s.acquired)}).Info("shared lock released")
	return nil
}

// withReaderFile calls act with the reader file name as it is now (its
// attributes and bytes) while holding the host's lock for that file (the
// lock stale-lock cleaners take), so that of two processes judging one
// reader file at once only one acts on it, and never on a file made since.
// act runs with the file closed unless the host's lock is an flock of it.
// act removes or replaces it if it so decides, and reports whether it did;
// a missing file is (false, nil).
func withReaderFile(name string, act func(fi os.FileInfo, raw []byte) (bool, error)) (bool, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	hostLock, err := lockHost(fileIDOf(fi), f)
	if err != nil {
		return false, fmt.Errorf("nfslock: %s: locking against other processes of this host: %w", name, err)
	}
	defer hostLock.Close()
	current, err := os.Lstat(name)
	if errors.Is(err, os.ErrNotExist) || err == nil && !os.SameFile(fi, current) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	raw, err := readRecordBytes(f, fi.Size())
	if err != nil {
		return false, err
	}
	if hostLock != nil {
		// As flockedLock.closeFile: removing an open file on NFS is a silly
		// rename, a .nfsXXXX left in P.nfs_readers until the close, which
		// makes the last reader's rmdir fail with ENOTEMPTY.
		f.Close()
		f = nil
	}
	return act(fi, raw)
}

// removeReader is the act of withReaderFile that removes name when remove
// says so of it.
func removeReader(name string, remove func(fi os.FileInfo, raw []byte) bool) func(os.FileInfo, []byte) (bool, error) {
	return func(fi os.FileInfo, raw []byte) (bool, error) {
		if !remove(fi, raw) {
			return false, nil
		}
		if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
		return true, nil
	}
}

// Readers returns the shared holders of the lock on path, as their reader
// files say: the live ones of this host, those of other hosts, and
// unreadable ones (as HolderCorrupt). Reader files of dead processes of
// this host are cleaned up, not returned. No shared holder is not an error.
func Readers(path string) ([]Holder, error) {
	var readers []Holder
	err := eachReader(path, "removing stale shared holder", func(name string, h Holder) error {
		if h.State != HolderDead {
			readers = append(readers, h)
			return nil
		}
		_, err := withReaderFile(name, removeReaderHolding(name, h.Raw))
		return err
	})
	return readers, err
}

// eachReader calls fn with each reader file of the lock on path and what
// it holds, until fn fails; fn's error is wrapped as doing, naming the
// file.
func eachReader(path, doing string, fn func(name string, h Holder) error) error {
	p, err := NormalizePath(path)
	if err != nil {
		return err
	}
	// Fresh as the lock's directory is when opened: a reader of another
	// host may have made P.nfs_readers since this host looked it up.
	revalidateDir(filepath.Dir(p))
	dir, base := readersDir(p), filepath.Base(p)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, syscall.ENOTDIR) {
		return nil // an exclusive holder's mark, in a directory that exists
	}
	if errors.Is(err, os.ErrNotExist) {
		// None, unless the lock's directory itself is missing: say so.
		if _, derr := os.Stat(filepath.Dir(p)); derr != nil {
			return dirError(p, "listing shared holders in directory", derr)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("nfslock: %s: listing shared holders in %s: %w", p, dir, err)
	}
	for _, e := range entries {
		if !isReaderFileOf(e.Name(), base) {
			continue
		}
		full := filepath.Join(dir, e.Name())
		h, err := readReaderFile(full)
		if errors.Is(err, os.ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return fmt.Errorf("nfslock: %s: reading shared holder %s: %w", p, e.Name(), err)
		}
		if err := fn(full, h); err != nil {
			return fmt.Errorf("nfslock: %s: %s %s: %w", p, doing, e.Name(), err)
		}
	}
	return nil
}

// removeReaderHolding is the act of withReaderFile that removes name if it
// still holds raw.
func removeReaderHolding(name string, raw []byte) func(os.FileInfo, []byte) (bool, error) {
	return removeReader(name, func(_ os.FileInfo, now []byte) bool { return bytes.Equal(now, raw) })
}

// readReaderFile reads and judges one reader file.
func readReaderFile(name string) (Holder, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return Holder{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Holder{}, err
	}
	raw, err := readRecordBytes(f, fi.Size())
	if err != nil {
		return Holder{}, err
	}
	return judge(Holder{Raw: raw, Since: fi.ModTime(), File: fi}), nil
}

// excludeReaders makes l, just taken, an exclusive lock: it waits, holding
// P.nfs_lock so that no new reader gets in, until no shared holder is
// left, or until ctx ends; unless wait, it does not wait. If shared holders
// remain (or they cannot be listed), it releases l and returns an error
// matching ErrLocked that names one of them, and ctx's error if it ended.
// A lock marked at its acquisition (see becomeP) has none, and costs nothing.
// If that release keeps failing, l is abandoned (see releaseOrAbandon).
func (l *Lock) excludeReaders(ctx context.Context, wait bool) error {
	l.mu.Lock()
	marked := l.marked
	l.mu.Unlock()
	if marked {
		return nil
	}
	var poll backoff
	for {
		readers, err := l.readersLeft()
		if err == nil && len(readers) == 0 {
			return nil
		}
		if err == nil {
			r := readers[0]
			err = fmt.Errorf("%w (one of %d shared holders)", r.heldError(l.path, fileID{}), len(readers))
		}
		var waitErr error
		if wait && !isPermanent(err) {
			t := time.NewTimer(poll.next())
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				waitErr = ctx.Err()
			}
		}
		l.releaseOrAbandon("releasing a lock taken while shared holders remain")
		if waitErr != nil {
			return fmt.Errorf("%w; gave up waiting for shared holders: %w", err, waitErr)
		}
		return err
	}
}

// readersLeft lists the shared holders of l, whose mark was refused:
// P.nfs_readers was, or looked like, a directory. Its mkdir first asks the
// server, whatever this host's cache of names says: a listing of a name
// cached as absent would find no one. A directory found empty is removed,
// so that the next writer's mark succeeds; l holds P.nfs_lock, so no
// reader can get in meanwhile.
func (l *Lock) readersLeft() ([]Holder, error) {
	dir := readersDir(l.path)
	if err := os.Mkdir(dir, 0o777); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("nfslock: %s: looking for shared holders in %s: %w", l.path, dir, err)
	}
	readers, err := Readers(l.path)
	if err == nil && len(readers) == 0 {
		syscall.Rmdir(dir)
	}
	return readers, err
}

// ReaderLockName returns the lock name whose shared holders' directory
// (P.nfs_readers) is the base name name, if name is one.
func ReaderLockName(name string) (string, bool) {
	lock, ok := strings.CutSuffix(name, ReadersDirSuffix)
	return lock, ok && lock != ""
}

// refuseReaders is excludeReaders without waiting, for TryLock.
func (l *Lock) refuseReaders() error { return l.excludeReaders(context.Background(), false) }

// SetOwner names the local process pid as the shared holder, with its
// start time, as Lock.SetOwner does: the reader file is replaced
// atomically (a new file renamed over it).
func (s *SharedLock) SetOwner(pid int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return fmt.Errorf("nfslock: %s: shared lock already released: %w", s.path, ErrNotLocked)
	}
	rec, err := recordFor(pid, s.rec.Message)
	if err != nil {
		return err
	}
	data, err := encodeFor(s.path, rec)
	if err != nil {
		return err
	}
	a, err := writeAttempt(s.path, data)
	if err != nil {
		return pathError(s.path, err)
	}
	if s.vouched {
		if err := vouch(a.dev, a.ino, data, s); err != nil {
			os.Remove(a.name)
			return fmt.Errorf("nfslock: %s: vouching for the new record on this host: %w", s.path, err)
		}
	}
	replaced, err := withReaderFile(s.name, func(fi os.FileInfo, _ []byte) (bool, error) {
		if !sameInode(fi, s.dev, s.ino) {
			return false, nil
		}
		return true, a.renameTo(s.name)
	})
	os.Remove(a.name) // left only if the rename did not happen
	if err != nil || !replaced {
		if s.vouched {
			unvouch(a.dev, a.ino, data, s)
		}
	}
	if err != nil {
		return pathError(s.path, err)
	}
	if !replaced {
		return fmt.Errorf("nfslock: %s: our shared lock was removed by someone else: %w", s.path, ErrNotLocked)
	}
	if s.vouched {
		unvouch(s.dev, s.ino, s.data, s)
	}
	s.rec, s.data, s.dev, s.ino = rec, data, a.dev, a.ino
	return nil
}

// Err returns nil while the shared lock is held, and an error matching
// ErrNotLocked once it was released.
func (s *SharedLock) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return fmt.Errorf("nfslock: %s: shared lock already released: %w", s.path, ErrNotLocked)
	}
	return nil
}

// Lost is nil: a shared lock has no lease to lose (see the Limits in
// docs/design.md); only an operator's break takes it away.
func (s *SharedLock) Lost() <-chan struct{} { return nil }

// LeaseDuration is 0: shared locks are not leases.
func (s *SharedLock) LeaseDuration() time.Duration { return 0 }

// Token is 0: shared locks get no fencing token.
func (s *SharedLock) Token() uint64 { return 0 }

// sharedLocks are the shared locks this process holds, for UnlockAll.
var sharedLocks = struct {
	mu sync.Mutex
	m  map[*SharedLock]bool
}{m: make(map[*SharedLock]bool)}

func (s *SharedLock) register(held bool) {
	sharedLocks.mu.Lock()
	defer sharedLocks.mu.Unlock()
	if held {
		sharedLocks.m[s] = true
	} else {
		delete(sharedLocks.m, s)
	}
}

// unlockAllShared releases the shared locks UnlockAll releases: those of
// this process, and those naming a process that is gone.
func unlockAllShared() []error {
	sharedLocks.mu.Lock()
	all := make([]*SharedLock, 0, len(sharedLocks.m))
	for s := range sharedLocks.m {
		all = append(all, s)
	}
	sharedLocks.mu.Unlock()
	var errs []error
	for _, s := range all {
		if rec := s.Record(); rec.Pid != os.Getpid() && alive(rec) {
			continue
		}
		if err := s.Unlock(); err != nil && !errors.Is(err, ErrNotLocked) {
			errs = append(errs, err)
		}
	}
	return errs
}

// BreakShared removes every shared holder of the lock on path, live ones
// and other hosts' included, and returns the holders it removed: the
// operator's override for a dead host's readers (Break is for an exclusive
// holder). Each reader file is removed only if it still holds what was
// read. No shared holder gives an error matching ErrNotLocked.
func BreakShared(path string) ([]Holder, error) {
	var removed []Holder
	err := eachReader(path, "breaking shared holder", func(name string, h Holder) error {
		ok, err := withReaderFile(name, removeReaderHolding(name, h.Raw))
		if ok {
			removed = append(removed, h)
		}
		return err
	})
	if err != nil {
		return removed, err
	}
	if len(removed) == 0 {
		return nil, fmt.Errorf("nfslock: %s: no shared holder: %w", path, ErrNotLocked)
	}
	return removed, nil
}
