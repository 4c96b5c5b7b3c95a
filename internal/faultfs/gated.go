package faultfs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// gatedFS puts FS.enter in front of go-fuse's node bridge, at the level of
// the FUSE protocol, so that every request the kernel sends is counted once
// and can be delayed, hung or failed, including the ones the bridge answers
// without asking the loopback nodes (ACCESS, OPENDIR, ...). FORGET passes
// through uncounted: it has no reply. The lock requests (GETLK, SETLK,
// SETLKW) are not gated because the kernel never sends them (see the
// package doc), nor are the extended-attribute requests, which are refused.
type gatedFS struct {
	fuse.RawFileSystem
	fs *FS
}

// Link performs the link and, while LoseLinkReplies is on, answers EEXIST
// as if the reply had been lost and the request retransmitted.
func (g *gatedFS) Link(cancel <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	if st := g.fs.enter(cancel, OpLink); !st.Ok() {
		return st
	}
	st := g.RawFileSystem.Link(cancel, in, name, out)
	if st.Ok() && g.fs.loseLinkReplies.Load() {
		// The kernel will never learn of the new entry, so it will never
		// forget it: give back the lookup reference the bridge took for it.
		g.RawFileSystem.Forget(out.NodeId, 1)
		return fuse.Status(syscall.EEXIST)
	}
	return st
}

// The mount has no extended attributes, as on NFSv3: each kind of request
// answers ENOSYS, after which the kernel stops sending it. Mount sends the
// first GETXATTR itself, so that the kernel's check for security.capability
// before every write costs no request.

func (g *gatedFS) GetXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	return 0, fuse.ENOSYS
}

func (g *gatedFS) ListXAttr(cancel <-chan struct{}, header *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	return 0, fuse.ENOSYS
}

func (g *gatedFS) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	return fuse.ENOSYS
}

func (g *gatedFS) RemoveXAttr(cancel <-chan struct{}, header *fuse.InHeader, attr string) fuse.Status {
	return fuse.ENOSYS
}

// Release and ReleaseDir have no reply to carry an error, and the backing
// file must be closed, so a fault set for them is consumed but not applied.

func (g *gatedFS) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	g.fs.enter(cancel, OpRelease)
	g.RawFileSystem.Release(cancel, in)
}

func (g *gatedFS) ReleaseDir(in *fuse.ReleaseIn) {
	g.fs.enter(nil, OpReleasedir)
	g.RawFileSystem.ReleaseDir(in)
}

func (g *gatedFS) Lookup(cancel <-chan struct{}, header *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	if st := g.fs.enter(cancel, OpLookup); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Lookup(cancel, header, name, out)
}

func (g *gatedFS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	if st := g.fs.enter(cancel, OpGetattr); !st.Ok() {
		return st
	}
	return g.RawFileSystem.GetAttr(cancel, in, out)
}

func (g *gatedFS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	if st := g.fs.enter(cancel, OpSetattr); !st.Ok() {
		return st
	}
	return g.RawFileSystem.SetAttr(cancel, in, out)
}

func (g *gatedFS) Statx(cancel <-chan struct{}, in *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	if st := g.fs.enter(cancel, OpStatx); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Statx(cancel, in, out)
}

func (g *gatedFS) Access(cancel <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	if st := g.fs.enter(cancel, OpAccess); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Access(cancel, in)
}

func (g *gatedFS) Readlink(cancel <-chan struct{}, header *fuse.InHeader) ([]byte, fuse.Status) {
	if st := g.fs.enter(cancel, OpReadlink); !st.Ok() {
		return nil, st
	}
	return g.RawFileSystem.Readlink(cancel, header)
}

func (g *gatedFS) Symlink(cancel <-chan struct{}, header *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	if st := g.fs.enter(cancel, OpSymlink); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Symlink(cancel, header, target, name, out)
}

func (g *gatedFS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	if st := g.fs.enter(cancel, OpMknod); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Mknod(cancel, in, name, out)
}

func (g *gatedFS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	if st := g.fs.enter(cancel, OpMkdir); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Mkdir(cancel, in, name, out)
}

func (g *gatedFS) Unlink(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	if st := g.fs.enter(cancel, OpUnlink); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Unlink(cancel, header, name)
}

func (g *gatedFS) Rmdir(cancel <-chan struct{}, header *fuse.InHeader, name string) fuse.Status {
	if st := g.fs.enter(cancel, OpRmdir); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Rmdir(cancel, header, name)
}

func (g *gatedFS) Rename(cancel <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	if st := g.fs.enter(cancel, OpRename); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Rename(cancel, in, oldName, newName)
}

func (g *gatedFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	if st := g.fs.enter(cancel, OpCreate); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Create(cancel, in, name, out)
}

func (g *gatedFS) Tmpfile(cancel <-chan struct{}, in *fuse.CreateIn, out *fuse.CreateOut) fuse.Status {
	if st := g.fs.enter(cancel, OpTmpfile); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Tmpfile(cancel, in, out)
}

func (g *gatedFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if st := g.fs.enter(cancel, OpOpen); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Open(cancel, in, out)
}

func (g *gatedFS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	if st := g.fs.enter(cancel, OpRead); !st.Ok() {
		return nil, st
	}
	return g.RawFileSystem.Read(cancel, in, buf)
}

func (g *gatedFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	if st := g.fs.enter(cancel, OpWrite); !st.Ok() {
		return 0, st
	}
	return g.RawFileSystem.Writev(cancel, in, data)
}

func (g *gatedFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	if st := g.fs.enter(cancel, OpLseek); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Lseek(cancel, in, out)
}

func (g *gatedFS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	if st := g.fs.enter(cancel, OpFlush); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Flush(cancel, in)
}

func (g *gatedFS) Fsync(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	if st := g.fs.enter(cancel, OpFsync); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Fsync(cancel, in)
}

func (g *gatedFS) Fallocate(cancel <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	if st := g.fs.enter(cancel, OpFallocate); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Fallocate(cancel, in)
}

func (g *gatedFS) CopyFileRange(cancel <-chan struct{}, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	if st := g.fs.enter(cancel, OpCopyFileRange); !st.Ok() {
		return 0, st
	}
	return g.RawFileSystem.CopyFileRange(cancel, in)
}

func (g *gatedFS) Ioctl(cancel <-chan struct{}, in *fuse.IoctlIn, inbuf []byte, out *fuse.IoctlOut, outbuf []byte) fuse.Status {
	if st := g.fs.enter(cancel, OpIoctl); !st.Ok() {
		return st
	}
	return g.RawFileSystem.Ioctl(cancel, in, inbuf, out, outbuf)
}

func (g *gatedFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if st := g.fs.enter(cancel, OpOpendir); !st.Ok() {
		return st
	}
	return g.RawFileSystem.OpenDir(cancel, in, out)
}

func (g *gatedFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if st := g.fs.enter(cancel, OpReaddir); !st.Ok() {
		return st
	}
	return g.RawFileSystem.ReadDir(cancel, in, out)
}

func (g *gatedFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	if st := g.fs.enter(cancel, OpReaddirplus); !st.Ok() {
		return st
	}
	return g.RawFileSystem.ReadDirPlus(cancel, in, out)
}

func (g *gatedFS) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	if st := g.fs.enter(cancel, OpFsyncdir); !st.Ok() {
		return st
	}
	return g.RawFileSystem.FsyncDir(cancel, in)
}

func (g *gatedFS) StatFs(cancel <-chan struct{}, header *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	if st := g.fs.enter(cancel, OpStatfs); !st.Ok() {
		return st
	}
	return g.RawFileSystem.StatFs(cancel, header, out)
}
