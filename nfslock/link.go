//go:build linux

package nfslock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// linkFile is link(2); tests replace it to lose the reply of a link that
// happened, as a retransmitted NFS LINK does.
var linkFile = os.Link

// attempt is an attempt file: a complete record under a name of its own.
type attempt struct {
	name     string
	dev, ino uint64
	mtime    time.Time   // set by the server: in a lease directory, when the lease begins
	fi       os.FileInfo // its fstat once written
}

// writeAttempt creates an attempt file for p holding data. The file is
// complete and closed before it is returned, so the lock it may become never
// exists half-written (Core's listed liveness bug).
func writeAttempt(p string, data []byte) (attempt, error) {
	name := attemptFile(p)
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
	if err != nil {
		return attempt{}, err
	}
	_, err = f.Write(data)
	var fi os.FileInfo
	if err == nil {
		fi, err = f.Stat()
	}
	// On NFS, write errors such as ENOSPC or EDQUOT often surface at close.
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return attempt{}, err
	}
	st := fi.Sys().(*syscall.Stat_t)
	return attempt{name: name, dev: st.Dev, ino: st.Ino, mtime: fi.ModTime(), fi: fi}, nil
}

// linkTo links the attempt file to target and reports whether target is now
// the attempt file. A link that fails may still have happened: NFS
// retransmits a LINK whose reply was lost, and the server answers the
// retransmission with EEXIST. So after a failure target is compared with the
// attempt file by device and inode first (link counts can be stale on
// network filesystems), and only when that comparison is impossible by the
// attempt file's link count. Core checks neither, and can wedge on its own
// lock. A plain EEXIST is reported as (false, nil): the lock is held.
func (a attempt) linkTo(target string) (bool, error) {
	err := linkFile(a.name, target)
	if err == nil {
		return true, nil
	}
	if isPermanent(err) {
		return false, err
	}
	if fi, lerr := os.Lstat(target); lerr == nil {
		if sameInode(fi, a.dev, a.ino) {
			return true, nil
		}
	} else if fi, serr := os.Stat(a.name); serr == nil && fi.Sys().(*syscall.Stat_t).Nlink == 2 {
		return true, nil
	}
	if errors.Is(err, os.ErrExist) {
		return false, nil
	}
	return false, err
}

// becomeP gives the record of a freshly taken lock a second name, P, as Core
// v1 does, so that readers of P see the holder, and gets rid of the attempt
// name. P is created only where nothing of value stands: absent, or a
// leftover record (of a crashed holder, or Core v2's copy). A P holding
// anything else (data, a directory, a symbolic link) is left alone, so that
// locking a path never destroys it. It reports whether P is now the record.
//
// For an exclusive acquisition the attempt name is renamed to
// P.nfs_readers instead of removed: that succeeds only if no shared holder
// has its directory there (see shared.go), and reports it as marked.
func (a attempt) becomeP(p string, exclusive bool) (ownsP, marked bool) {
	err := os.Link(a.name, p)
	if err == nil {
		ownsP = true
	} else {
		ownsP = errors.Is(err, os.ErrExist) && isRecordFile(p) && rename(a.name, p) == nil
	}
	if exclusive {
		marked = a.renameTo(readersDir(p)) == nil
	}
	if !marked {
		// After a lost LINK reply P may already be the attempt file, and a
		// rename between two names of one file removes neither: remove the
		// attempt name in every case.
		os.Remove(a.name)
	}
	return ownsP, marked
}

// renameTo renames the attempt file to target. A rename that fails may
// still have happened: NFS retransmits a RENAME whose reply was lost, and
// the server answers the retransmission with ENOENT (the attempt name is
// gone). So after a failure target is compared with the attempt file by
// device and inode, as linkTo does, and rename's error (an
// *os.LinkError) is returned only if target is not the attempt file.
func (a attempt) renameTo(target string) error {
	err := rename(a.name, target)
	if err == nil {
		return nil
	}
	if fi, lerr := os.Lstat(target); lerr == nil && sameInode(fi, a.dev, a.ino) {
		return nil
	}
	return err
}

// renameFile is rename(2); tests replace it to lose the reply of a rename
// that happened, as a retransmitted NFS RENAME does.
var renameFile = syscall.Rename

// rename is rename(2). os.Rename first lstats the new name to refuse a
// directory, which costs an NFS round trip; rename(2) refuses one anyway.
func rename(from, to string) error {
	if err := renameFile(from, to); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

func sameInode(fi os.FileInfo, dev, ino uint64) bool {
	st := fi.Sys().(*syscall.Stat_t)
	return st.Dev == dev && st.Ino == ino
}

// permanentErrnos are failures that retrying cannot cure: a blocking
// acquire returns them at once instead of spinning.
var permanentErrnos = []syscall.Errno{
	syscall.EACCES, syscall.EPERM, syscall.EROFS, syscall.ENOENT, syscall.ENOTDIR,
	syscall.ENAMETOOLONG, syscall.ENOSPC, syscall.EDQUOT, syscall.ELOOP, syscall.EISDIR, syscall.EINVAL, syscall.E2BIG,
}

func isPermanent(err error) bool {
	for _, errno := range permanentErrnos {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// createError reports a failure to create an attempt file for p by the
// lock's directory: the attempt file's name means nothing to the caller.
func createError(p string, err error) error {
	return dirError(p, "creating a file in directory", err)
}

// dirError reports a failure of doing something in p's directory by the
// directory's name, and a directory that does not exist as just that.
func dirError(p, doing string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR) {
		doing = "directory"
	}
	return pathError(p, fmt.Errorf("%s %s: %w", doing, filepath.Dir(p), err))
}

// pathError names the lock path in err, and for ENAMETOOLONG explains the
// suffixes that made the name too long.
func pathError(p string, err error) error {
	if errors.Is(err, syscall.ENAMETOOLONG) {
		if nerr := checkName(p); nerr != nil {
			return nerr
		}
	}
	return fmt.Errorf("nfslock: %s: %w", p, err)
}
