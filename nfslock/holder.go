//go:build linux

package nfslock

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// HolderState says what can be known from here about a lock's holder.
type HolderState int

const (
	HolderAlive   HolderState = iota + 1 // a running process of this host, or this process's own Lock
	HolderDead                           // a process of this host that is gone: the lock is stale
	HolderRemote                         // a process of another host: its life cannot be judged from here
	HolderCorrupt                        // the record does not parse (a Core v1 writer may be mid-write)
)

func (s HolderState) String() string {
	switch s {
	case HolderAlive:
		return "alive"
	case HolderDead:
		return "dead"
	case HolderRemote:
		return "remote"
	case HolderCorrupt:
		return "corrupt"
	}
	return fmt.Sprintf("HolderState(%d)", int(s))
}

// Holder describes a held lock as one read of P.nfs_lock found it.
type Holder struct {
	Record Record // zero when State is HolderCorrupt
	Raw    []byte // the record's bytes as read
	// Since is the modification time of P.nfs_lock: when the holder
	// acquired the lock (changing the record keeps it).
	Since time.Time
	State HolderState
	// File is P.nfs_lock's attributes (mode, owner, ...) as read, so that a
	// caller that shows them needs no second stat: every stat is an NFS
	// round trip. It is nil when nothing was read: for a lock this process
	// holds, which a HeldError describes from memory.
	File os.FileInfo
	// Lease is set in a lease directory (see LeaseFile). There, Since is
	// the acquisition time its holder declared (the lock file's mtime is
	// the last renewal), when it declared one.
	Lease *Lease
}

// fileID identifies one version of P.nfs_lock, so that a waiter can tell
// from a single lstat whether the lock changed since it last read it.
type fileID struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

func fileIDOf(fi os.FileInfo) fileID {
	st := fi.Sys().(*syscall.Stat_t)
	return fileID{dev: st.Dev, ino: st.Ino, size: fi.Size(), mtime: fi.ModTime()}
}

// Inspect reads the lock at path and judges its holder. A free lock gives an
// error matching ErrNotLocked; an unparsable record is not an error but a
// Holder in state HolderCorrupt, with the bytes in Raw. A path that cannot
// be a lock gives an error matching ErrInvalidPath.
func Inspect(path string) (Holder, error) {
	path, err := NormalizePath(path)
	if err != nil {
		return Holder{}, err
	}
	h, _, err := readLockFile(path)
	return h, err
}

// ReadRecord returns the record of the lock at path. A free lock gives an
// error matching ErrNotLocked, an unparsable record one matching ErrCorrupt,
// a path that cannot be a lock one matching ErrInvalidPath.
func ReadRecord(path string) (Record, error) {
	path, err := NormalizePath(path)
	if err != nil {
		return Record{}, err
	}
	h, _, err := readLockBytes(path)
	if err != nil {
		return Record{}, err
	}
	rec, err := ParseRecord(h.Raw)
	if err != nil {
		return Record{}, fmt.Errorf("nfslock: %s: %w", path, err)
	}
	return rec, nil
}

// readLockFile reads and judges P.nfs_lock.
func readLockFile(p string) (Holder, fileID, error) {
	h, id, err := readLockBytes(p)
	if err != nil {
		return h, id, err
	}
	j := judge(h)
	if j.Lease = leaseOf(p, j, id.ino); j.Lease != nil && !j.Lease.HeldSince.IsZero() {
		j.Since = j.Lease.HeldSince
	}
	return j, id, nil
}

// readLockBytes reads P.nfs_lock in one open, fstat, read, close, filling
// only Raw and Since of the Holder.
func readLockBytes(p string) (Holder, fileID, error) {
	f, fi, err := openLockFile(p)
	if err != nil {
		return Holder{}, fileID{}, err
	}
	defer f.Close()
	raw, err := readRecordBytes(f, fi.Size())
	if err != nil {
		return Holder{}, fileID{}, fmt.Errorf("nfslock: %s: %w", p, err)
	}
	return Holder{Raw: raw, Since: fi.ModTime(), File: fi}, fileIDOf(fi), nil
}

// openLockFile opens P.nfs_lock for reading, with its fstat. A missing one
// gives an error matching ErrNotLocked. It refuses anything but a regular
// file (a symbolic link, a FIFO), so that nothing can make it follow a link
// elsewhere or block.
func openLockFile(p string) (*os.File, os.FileInfo, error) {
	name := lockFile(p)
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("nfslock: %s: %w", p, ErrNotLocked)
	}
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, fmt.Errorf("nfslock: %s: %s is a symbolic link, not a lock record; an operator must remove it: %w", p, name, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("nfslock: %s: %w", p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("nfslock: %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("nfslock: %s: %s is a %s, not a lock record; an operator must remove it: %w", p, name, fi.Mode().Type(), syscall.EINVAL)
	}
	return f, fi, nil
}

// judge parses the record that h holds as Raw and decides what its holder
// is: h with Record and State filled in.
func judge(h Holder) Holder {
	rec, err := ParseRecord(h.Raw)
	switch {
	case err != nil:
		h.State = HolderCorrupt
		return h
	case !isLocal(rec):
		h.State = HolderRemote
	case alive(rec), h.File != nil && vouched(h.File, h.Raw):
		// A holder that exited is alive while a process of this host
		// vouches for its lock (see vouch.go).
		h.State = HolderAlive
	default:
		h.State = HolderDead
	}
	h.Record = rec
	return h
}

func (h Holder) heldError(p string, id fileID) *HeldError {
	return &HeldError{Path: p, Holder: h, file: id}
}

// readRecordBytes reads a lock file of the given size (from fstat), at most
// MaxRecordSize+1 bytes so that a huge file reads as corrupt. Every read is
// an NFS round trip: when the first read returns exactly size bytes, the
// record is complete and no second read is made to see end of file.
func readRecordBytes(f *os.File, size int64) ([]byte, error) {
	buf := make([]byte, min(max(size, 0), MaxRecordSize)+1)
	n, err := f.Read(buf)
	if err == io.EOF || err == nil && int64(n) == size {
		return buf[:n], nil
	}
	if err != nil {
		return nil, err
	}
	rest, err := io.ReadAll(io.LimitReader(f, MaxRecordSize+1-int64(n)))
	return append(buf[:n], rest...), err
}
