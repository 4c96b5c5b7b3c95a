//go:build linux

package nfslock

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// A flockedLock is P.nfs_lock opened, with the bytes it holds, while this
// process holds the host's lock for it (see lockHost), after checking that
// the name still refers to the opened file.
//
// Every removal or replacement of P.nfs_lock by this package (release,
// record change, stale cleanup, break) happens while holding one. A cleaner
// checks, holding it, that the name still refers to the file it judged
// stale, and removes it before letting go; so it cannot remove a lock taken
// since, whoever removed the old one. Without it, a slow cleaner could remove
// a lock that a fast one (or the holder's own release) had already removed
// and another process re-taken: the safety bug Core's documentation lists.
type flockedLock struct {
	f, hostLock *os.File
	Holder
	id fileID
}

// openFlocked opens P.nfs_lock and takes the host's lock for it. A missing
// lock, or one whose name keeps changing under it, gives an error matching
// ErrNotLocked.
func openFlocked(p string) (*flockedLock, error) {
	const tries = 3 // the name may change hands between the open and the check
	for try := 1; ; try++ {
		f, fi, err := openLockFile(p)
		if err != nil {
			return nil, err
		}
		fl := &flockedLock{f: f, Holder: Holder{Since: fi.ModTime(), File: fi}, id: fileIDOf(fi)}
		if fl.hostLock, err = lockHost(fl.id, f); err != nil {
			f.Close()
			return nil, fmt.Errorf("nfslock: %s: locking %s against other processes of this host: %w", p, lockFile(p), err)
		}
		current, err := os.Lstat(lockFile(p))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			// Not an answer (ESTALE, EIO): the caller must not take it
			// for "someone else removed it" and carry on.
			fl.Close()
			return nil, fmt.Errorf("nfslock: %s: %w", p, err)
		}
		if err != nil || !os.SameFile(fi, current) {
			fl.Close()
			if try == tries || err != nil {
				return nil, fmt.Errorf("nfslock: %s: %w", p, ErrNotLocked)
			}
			continue
		}
		if fl.Raw, err = readRecordBytes(f, fi.Size()); err != nil {
			fl.Close()
			return nil, fmt.Errorf("nfslock: %s: %w", p, err)
		}
		return fl, nil
	}
}

// Close lets go of the lock file and the host's lock for it.
func (fl *flockedLock) Close() {
	fl.closeFile()
	if fl.f != nil {
		fl.f.Close()
	}
	if fl.hostLock != nil {
		fl.hostLock.Close()
	}
}

// closeFile closes the descriptor of P.nfs_lock before its removal, keeping
// the host's lock, when that lock is not an flock of the descriptor itself.
// An NFS client that removes a name of a file it has open renames it to
// .nfsXXXX instead (a "silly rename": a LOOKUP and a RENAME, and a REMOVE at
// close), so removing the name of a closed file saves two round trips.
func (fl *flockedLock) closeFile() {
	if fl.hostLock != nil && fl.f != nil {
		fl.f.Close()
		fl.f = nil
	}
}

// removeIfUnchanged removes the lock at p if P.nfs_lock is still the file
// judged (its device and inode) and holds exactly the bytes raw, which the
// caller judged removable; doing says why, for errors ("cleaning up a
// stale lock"). It reports whether it removed it. Of several cleaners that
// judged the same stale lock, exactly one removes it; the others find the
// name gone or naming a new lock, and leave it alone. The bytes alone do
// not suffice: a holder that rewrites its record with the same bytes
// (SetMessage of the same text) makes a new file, which may be vouched for
// where the judged one no longer is (see vouch.go).
func removeIfUnchanged(p string, judged fileID, raw []byte, doing string) (bool, error) {
	fl, err := openFlocked(p)
	if errors.Is(err, ErrNotLocked) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer fl.Close()
	if fl.id.dev != judged.dev || fl.id.ino != judged.ino || !bytes.Equal(fl.Raw, raw) {
		return false, nil
	}
	if dur, err := dirLease(p); err == nil && dur > 0 {
		// Breakers on other hosts may be removing this very version:
		// removals other than the holder's own go through a claim.
		removed, _, err := claimAndRemove(p, fl, dur)
		return removed, err
	}
	fl.closeFile()
	if err := removeLockFiles(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil // removed by a process outside the flock (Core)
		}
		return false, removalError(p, doing, fl, err)
	}
	return true, nil
}

// removalError reports a failed removal of the lock files of fl. A sticky
// directory (a shared lock directory, as /tmp is) lets only a file's owner,
// the directory's owner and root remove it: that is said, with the owner,
// so that a user who meets another user's lock knows whom to ask.
func removalError(p, doing string, fl *flockedLock, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	dir := filepath.Dir(p)
	di, derr := os.Stat(dir)
	if errors.Is(err, os.ErrPermission) && derr == nil && di.Mode()&os.ModeSticky != 0 {
		owner := fl.File.Sys().(*syscall.Stat_t).Uid
		if int(owner) != os.Geteuid() {
			return fmt.Errorf("nfslock: %s: %s: its files belong to uid %d and the directory %s is sticky, so only that user, the directory's owner or root may remove them: %w",
				p, doing, owner, dir, err)
		}
	}
	return fmt.Errorf("nfslock: %s: %s: removing %s: %w", p, doing, lockFile(p), err)
}

// removeLockFiles removes P if it is a holder record, and an exclusive
// holder's mark (unlink never removes the shared holders' directory), and
// then P.nfs_lock, in Core's order: the lock is the last thing to go.
func removeLockFiles(p string) error {
	if isRecordFile(p) {
		os.Remove(p)
	}
	syscall.Unlink(readersDir(p))
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
