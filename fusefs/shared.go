//go:build linux

package fusefs

import (
	"bytes"
	"fmt"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/nfslockfs/nfslockfs/nfslock"
)

// A lock that only shared holders hold has no P.nfs_lock, and must never
// look free: reads show its shared holders, stat gives it a size, and ls
// lists it (dir.go).

// sharedText renders the shared holders of the lock at path, or nothing
// when it has none: a count line, then each holder as a read of an
// exclusively held lock shows it (sexp: one raw record a line).
func (fsys *filesystem) sharedText(path string) ([]byte, error) {
	readers, err := nfslock.Readers(path)
	if err != nil || len(readers) == 0 {
		return nil, err
	}
	var text []byte
	if fsys.format == FormatText {
		text = fmt.Appendf(text, "shared-by: %d\n", len(readers))
	}
	for i, h := range readers {
		if i > 0 || fsys.format == FormatText {
			text = append(text, '\n')
		}
		text = append(text, bytes.TrimSuffix(fsys.format.render(h), []byte("\n"))...)
	}
	return append(text, '\n'), nil
}

// sharedAttr fills out for the lock at p if shared holders hold it (and
// reports true): the first reader file's mode and owner, the rendered
// holders' length as size, the newest acquisition as mtime.
func (fsys *filesystem) sharedAttr(p string, out *fuse.Attr) (syscall.Errno, bool) {
	readers, err := nfslock.Readers(p)
	if err != nil {
		fsys.log.WithError(err).WithField("path", p).Warn("cannot list a lock's shared holders")
		return errnoOf(err), true
	}
	if len(readers) == 0 {
		return 0, false
	}
	text, _ := fsys.sharedText(p)
	out.FromStat(readers[0].File.Sys().(*syscall.Stat_t))
	out.Size = uint64(len(text))
	since := readers[0].Since
	for _, h := range readers {
		if h.Since.After(since) {
			since = h.Since
		}
	}
	out.SetTimes(nil, &since, nil)
	fileAttr(out)
	return 0, true
}

// sharedConflict reports, for F_GETLK of a write lock, the lock's shared
// holders as a conflicting read lock (with the pid of one that is a live
// process of this node), unless owner holds one of them itself.
func (fsys *filesystem) sharedConflict(path string, own bool, out *fuse.FileLock) syscall.Errno {
	readers, err := nfslock.Readers(path)
	if err != nil {
		return errnoOf(err)
	}
	if len(readers) == 0 || own && len(readers) == 1 {
		return 0
	}
	*out = fuse.FileLock{Start: 0, End: offsetMax, Typ: syscall.F_RDLCK}
	for _, h := range readers {
		if h.State == nfslock.HolderAlive {
			out.Pid = uint32(h.Record.Pid)
			break
		}
	}
	return 0
}
