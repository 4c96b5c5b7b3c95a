package nfslock

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// removeIfUnchanged removes the lock at p (P, then P.nfs_lock) if P.nfs_lock
// still holds exactly the bytes raw, which the caller judged removable. It
// reports whether it removed it.
//
// Cleaners on one host serialize on an flock of P.nfs_lock, and each
// re-checks under the flock that the name still refers to the file it locked
// and that the file still holds raw. Of several cleaners that judged the same
// stale lock, the first removes it; the others then find the name gone or
// naming a new lock, and leave it alone. Without the flock, a slow cleaner
// could remove a lock that a fast one had already cleaned and re-taken, which
// is the safety bug Core's documentation lists.
func removeIfUnchanged(p string, raw []byte) (bool, error) {
	name := lockFile(p)
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("nfslock: %s: removing stale lock: %w", p, err)
	}
	defer f.Close() // also drops the flock
	if err := flock(f); err != nil {
		return false, fmt.Errorf("nfslock: %s: removing stale lock: flock %s: %w", p, name, err)
	}
	locked, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("nfslock: %s: removing stale lock: %w", p, err)
	}
	current, err := os.Lstat(name)
	if err != nil || !os.SameFile(locked, current) {
		return false, nil
	}
	now, err := readRecordBytes(f, locked.Size())
	if err != nil {
		return false, fmt.Errorf("nfslock: %s: removing stale lock: %w", p, err)
	}
	if !bytes.Equal(now, raw) {
		return false, nil
	}
	if err := removeLockFiles(p); err != nil {
		return false, fmt.Errorf("nfslock: %s: removing stale lock: %w", p, err)
	}
	return true, nil
}

// removeLockFiles removes P if it is a holder record, and then P.nfs_lock,
// in Core's order: the lock is the last thing to go.
func removeLockFiles(p string) error {
	if isRecordFile(p) {
		os.Remove(p)
	}
	return os.Remove(lockFile(p))
}

// isRecordFile reports whether p is a regular file that is empty or holds a
// holder record: a copy of a lock's record that may be replaced or removed,
// unlike a file of data.
func isRecordFile(p string) bool {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > MaxRecordSize {
		return false
	}
	data, err := readRecordBytes(f, fi.Size())
	if err != nil {
		return false
	}
	_, err = ParseRecord(data)
	return len(data) == 0 || err == nil
}

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			return err
		}
	}
}
