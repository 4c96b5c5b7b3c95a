//go:build linux

package fusefs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/nfslockfs/nfslockfs/nfslock"
	"golang.org/x/sys/unix"
)

// A dirNode is a directory of the backing tree. Its entries are its
// subdirectories, its symbolic links to directories (symlinkNode) and its
// lock names: `name` for each other backing file `name` (a symbolic link
// to a file among them: the lock's files are its own, the link is never
// followed or removed) or `name.nfs_lock`, with the protocol's helper
// files hidden.
type dirNode struct {
	fs.Inode
	fsys *filesystem
	path string // the backing directory
}

var (
	_ = (fs.NodeLookuper)((*dirNode)(nil))
	_ = (fs.NodeReaddirer)((*dirNode)(nil))
	_ = (fs.NodeGetattrer)((*dirNode)(nil))
	_ = (fs.NodeSetattrer)((*dirNode)(nil))
	_ = (fs.NodeMkdirer)((*dirNode)(nil))
	_ = (fs.NodeRmdirer)((*dirNode)(nil))
	_ = (fs.NodeCreater)((*dirNode)(nil))
	_ = (fs.NodeUnlinker)((*dirNode)(nil))
	_ = (fs.NodeStatfser)((*dirNode)(nil))
)

func (n *dirNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	return lstatAttr(n.path, out)
}

// lstatAttr fills out with the attributes of the backing file p itself.
func lstatAttr(p string, out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStat(&st)
	return 0
}

// Setattr is chmod, chown and touch of a directory: they change the backing
// directory. With --allow-other the kernel has checked that the caller may
// (default_permissions); otherwise only the daemon's user has the mount.
func (n *dirNode) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok {
		return syscall.EISDIR
	}
	if mode, ok := in.GetMode(); ok {
		if err := syscall.Chmod(n.path, mode&0o7777); err != nil {
			return fs.ToErrno(err)
		}
	}
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		u, g := -1, -1
		if uok {
			u = int(uid)
		}
		if gok {
			g = int(gid)
		}
		if err := syscall.Lchown(n.path, u, g); err != nil {
			return fs.ToErrno(err)
		}
	}
	atime, aok := in.GetATime()
	mtime, mok := in.GetMTime()
	if aok || mok {
		times := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if aok {
			times[0] = unix.NsecToTimespec(atime.UnixNano())
		}
		if mok {
			times[1] = unix.NsecToTimespec(mtime.UnixNano())
		}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, n.path, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fs.ToErrno(err)
		}
	}
	return n.Getattr(ctx, f, out)
}

func (n *dirNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.path, &st); err != nil {
		return fs.ToErrno(err)
	}
	out.FromStatfsT(&st)
	return 0
}

func (n *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if nfslock.IsHelperFile(name) {
		return nil, syscall.ENOENT
	}
	p := filepath.Join(n.path, name)
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err == nil {
		if kind := st.Mode & syscall.S_IFMT; kind == syscall.S_IFDIR || kind == syscall.S_IFLNK && linksToDir(p) {
			out.FromStat(&st)
			return n.child(ctx, name, kind), 0
		}
	}
	if len(name) > nfslock.MaxNameLen {
		return nil, syscall.ENAMETOOLONG
	}
	if errno := n.fsys.lockAttr(p, &out.Attr); errno != 0 {
		return nil, errno
	}
	return n.child(ctx, name, syscall.S_IFREG), 0
}

// child returns the node for the entry name of kind (S_IFDIR, S_IFLNK, or
// S_IFREG for a lock): the one the kernel knows already if it is of that
// kind, so that its inode number stays put, or a new one.
func (n *dirNode) child(ctx context.Context, name string, kind uint32) *fs.Inode {
	if ch := n.GetChild(name); ch != nil && ch.Mode() == kind {
		return ch
	}
	p := filepath.Join(n.path, name)
	var node fs.InodeEmbedder
	switch kind {
	case syscall.S_IFDIR:
		node = &dirNode{fsys: n.fsys, path: p}
	case syscall.S_IFLNK:
		node = &symlinkNode{fsys: n.fsys, path: p}
	default:
		node = &lockNode{fsys: n.fsys, path: p}
	}
	return n.NewInode(ctx, node, fs.StableAttr{Mode: kind})
}

func (n *dirNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	entries, err := os.ReadDir(n.path)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	var list []fuse.DirEntry
	for _, e := range entries {
		name := e.Name()
		mode := uint32(syscall.S_IFREG)
		if lock, ok := nfslock.ReaderLockName(name); ok {
			if !e.IsDir() || !hasEntries(filepath.Join(n.path, name)) {
				continue // no shared holder: an exclusive holder's mark, or an empty leftover
			}
			name = lock // held shared (only, if it has no P.nfs_lock)
		} else if e.IsDir() {
			mode = syscall.S_IFDIR
		} else if e.Type()&os.ModeSymlink != 0 && linksToDir(filepath.Join(n.path, name)) {
			mode = syscall.S_IFLNK
		} else if lock, ok := strings.CutSuffix(name, nfslock.LockSuffix); ok {
			name = lock
		}
		if name == "" || nfslock.IsHelperFile(name) {
			continue
		}
		list = append(list, fuse.DirEntry{Name: name, Mode: mode})
	}
	// name and name.nfs_lock give one entry; a directory wins over a lock
	// of the same name, as in Lookup.
	slices.SortStableFunc(list, func(a, b fuse.DirEntry) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return int(b.Mode&syscall.S_IFDIR) - int(a.Mode&syscall.S_IFDIR)
	})
	list = slices.CompactFunc(list, func(a, b fuse.DirEntry) bool { return a.Name == b.Name })
	return fs.NewListDirStream(list), 0
}

// hasEntries reports whether the directory dir has an entry.
func hasEntries(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) > 0
}

func (n *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if nfslock.IsHelperFile(name) {
		return nil, syscall.EINVAL
	}
	p := filepath.Join(n.path, name)
	if err := os.Mkdir(p, os.FileMode(mode&07777)); err != nil {
		return nil, fs.ToErrno(err)
	}
	giveToCaller(ctx, p)
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return nil, fs.ToErrno(err)
	}
	out.FromStat(&st)
	return n.child(ctx, name, syscall.S_IFDIR), 0
}

// Create is an open with O_CREAT of a name the directory does not show:
// a lock that is free and has no leftover file.
func (n *dirNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if nfslock.IsHelperFile(name) {
		return nil, nil, 0, syscall.EINVAL
	}
	if len(name) > nfslock.MaxNameLen {
		return nil, nil, 0, syscall.ENAMETOOLONG
	}
	p := filepath.Join(n.path, name)
	fh, errno := n.fsys.open(ctx, p, flags, true)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	n.fsys.openAttr(p, fh, &out.Attr)
	return n.child(ctx, name, syscall.S_IFREG), fh, fuse.FOPEN_DIRECT_IO, 0
}

func (n *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.fsys.removeLock(filepath.Join(n.path, name))
}

// giveToCaller makes the caller the owner of the new backing file p, as if
// it had created it, when the daemon runs as root (with --allow-other,
// anyone may create through it). Failure (root squashed by the NFS server)
// leaves the daemon's owner.
func giveToCaller(ctx context.Context, p string) {
	if c, ok := fuse.FromContext(ctx); ok && os.Geteuid() == 0 {
		syscall.Lchown(p, int(c.Uid), int(c.Gid))
	}
}
