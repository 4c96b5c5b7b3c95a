package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// checkLockDir tells a free lock from a mistyped path: the library calls a
// lock free whenever PATH.nfs_lock does not exist, missing directory
// included, and an operator who is told "free" for a typo is misled.
func checkLockDir(path string) error {
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// checkNotData refuses a PATH that is something other than a lock file.
// Taking the lock writes its record to PATH and releasing it removes PATH
// (Core's layout), so "nfslock data.csv cmd", harmless with flock(1),
// would destroy data.csv; flock's idiom of locking the script itself would
// delete the script; and a directory, which flock can lock, would be
// removed if empty. An empty file (flock's usual lock file) and a record
// left by an earlier holder, even half-written, are fine.
func checkNotData(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", path, err)
	case !fi.Mode().IsRegular():
		return notALockFile(path, "is not a regular file")
	case fi.Size() == 0:
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, 64)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !looksLikeRecord(head[:n]) {
		return notALockFile(path, "holds data")
	}
	return nil
}

func notALockFile(path, what string) error {
	return fmt.Errorf("%s %s: taking the lock would replace it with the lock's record, and releasing it would remove it (the lock files are PATH and PATH.nfs_lock, as in Core's Lock_file.Nfs); name a lock of its own, such as %s.lock", path, what, path)
}

// looksLikeRecord reports whether a file starting with head begins as a
// holder record does.
func looksLikeRecord(head []byte) bool {
	return bytes.HasPrefix(bytes.Join(bytes.Fields(head), nil), []byte("((host"))
}
