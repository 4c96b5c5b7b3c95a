//go:build linux

package fusefs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/nfslockfs/nfslockfs/nfslock"
	"github.com/sirupsen/logrus"
)

// Rmdir removes a backing directory. A directory that looks empty through
// the mount may still hold the protocol's hidden files: the garbage among
// them (attempt files of acquirers that died, see nfslock.IsGarbage) is
// removed and the rmdir tried again; the others keep it, and the log says
// which and why, since the caller sees only ENOTEMPTY.
func (n *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	p := filepath.Join(n.path, name)
	err := syscall.Rmdir(p)
	if err != syscall.ENOTEMPTY && err != syscall.EEXIST {
		return fs.ToErrno(err)
	}
	kept, onlyHelpers := n.fsys.removeGarbage(p)
	if !onlyHelpers {
		return syscall.ENOTEMPTY // it has entries the mount shows
	}
	if len(kept) == 0 {
		return fs.ToErrno(syscall.Rmdir(p))
	}
	n.fsys.log.WithFields(logrus.Fields{"path": p, "kept": kept}).Warn("rmdir: the directory looks empty but holds helper files that are still in use")
	return syscall.ENOTEMPTY
}

// removeGarbage removes the garbage helper files of the directory dir, if
// it holds nothing but helper files (onlyHelpers), and says why each of the
// others stays.
func (fsys *filesystem) removeGarbage(dir string) (kept []string, onlyHelpers bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false
	}
	for _, e := range entries {
		if !nfslock.IsHelperFile(e.Name()) {
			return nil, false
		}
	}
	now := time.Now()
	for _, e := range entries {
		name := e.Name()
		info, err := e.Info()
		if _, ok := nfslock.ReaderLockName(name); ok {
			// The shared holders' directory, empty but for a reader
			// getting in (which then makes it again), or an exclusive
			// holder's mark (see nfslock's shared.go): neither is needed.
			if err := os.Remove(filepath.Join(dir, name)); err == nil || os.IsNotExist(err) {
				continue
			}
		} else if err == nil && nfslock.IsGarbage(name, info.ModTime(), now) {
			if err := os.Remove(filepath.Join(dir, name)); err == nil || os.IsNotExist(err) {
				fsys.log.WithField("path", filepath.Join(dir, name)).Info("rmdir: removed an attempt file left by an acquirer that died")
				continue
			}
		}
		kept = append(kept, name+": "+whyKept(name))
	}
	return kept, true
}

// whyKept says why the helper file name is not garbage.
func whyKept(name string) string {
	switch {
	case strings.HasSuffix(name, nfslock.AttemptSuffix):
		return "an acquisition is under way (attempt files are garbage after five minutes)"
	case strings.HasSuffix(name, nfslock.LockSuffix):
		return "a held lock, named with a trailing slash by an older tool"
	case strings.HasSuffix(name, nfslock.ReadersDirSuffix):
		return "shared holders hold a lock"
	}
	return "a file removed on an NFS client that still has it open"
}
