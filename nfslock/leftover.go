//go:build linux

package nfslock

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// RemoveLeftover removes P, the file that a free lock at path may leave
// behind (Core v1 hard-links it to the lock file, Core v2 writes it as a
// copy of the record; a holder that dies before its release leaves it), if
// it is a regular file that is empty or holds a holder record. Anything else
// at P is user data and is never removed: a data file, a directory, a
// symbolic link give an error matching ErrNotRecord. A missing P gives one
// matching os.ErrNotExist.
//
// Misuse: the caller must have found the lock free (Inspect says
// ErrNotLocked); RemoveLeftover does not look at P.nfs_lock.
func RemoveLeftover(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !isRecordFile(path) {
		return fmt.Errorf("nfslock: %s: a %s that is not a lock record: never removed: %w", path, kindOf(fi), ErrNotRecord)
	}
	return os.Remove(path)
}

// kindOf names the kind of file fi describes, for messages.
func kindOf(fi os.FileInfo) string {
	switch {
	case fi.Mode().IsRegular():
		return "file"
	case fi.IsDir():
		return "directory"
	case fi.Mode()&os.ModeSymlink != 0:
		return "symbolic link"
	}
	return "special file"
}

// IsGarbage reports whether the file name in a lock directory, last
// modified at mtime, is the protocol's garbage as of now: an attempt file
// older than five minutes, whose writer died between creating and removing
// it (Core removes those too). Younger attempt files belong to
// acquisitions under way.
func IsGarbage(name string, mtime, now time.Time) bool {
	name = filepath.Base(name)
	return strings.HasSuffix(name, AttemptSuffix) && IsHelperFile(name) && now.Sub(mtime) > attemptMaxAge
}
