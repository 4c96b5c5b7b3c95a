//go:build linux

package fusefs

import (
	"context"
	"os"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// A symlinkNode is a symbolic link to a directory in the backing
// directory. It shows as what it is, with the link's own attributes, but
// the mount never follows it: through it, programs would reach plain files
// elsewhere on the export, which lock nothing, or give locks of the mount
// a second name. Following it fails with ELOOP; rm of it, EPERM
// (removeLock: it is not a lock record). A link to anything else is a lock
// name like any file (see dirNode).
type symlinkNode struct {
	fs.Inode
	fsys *filesystem
	path string // the link in the backing directory
}

var (
	_ = (fs.NodeGetattrer)((*symlinkNode)(nil))
	_ = (fs.NodeReadlinker)((*symlinkNode)(nil))
)

func (n *symlinkNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return lstatAttr(n.path, out)
}

// Readlink comes both from readlink(2) and from the kernel following the
// link in a path: they cannot be told apart, so both fail.
func (n *symlinkNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	n.fsys.log.WithField("path", n.path).Warn("a symbolic link in the backing directory is not followed through the mount")
	return nil, syscall.ELOOP
}

// linksToDir reports whether the symbolic link p leads to a directory.
func linksToDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
