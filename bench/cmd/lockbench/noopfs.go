package main

import (
	"context"
	"os"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// noopFile is the one file of the no-op filesystem.
const noopFile = "f"

// noopRoot is a FUSE filesystem of one empty file whose open and release do
// nothing, mounted as nfslockfs mounts (nothing cached, direct I/O, O_TRUNC
// within OPEN): an open and close through it is the floor of one through
// the mount, the kernel's and go-fuse's share of the cycle.
type noopRoot struct{ fs.Inode }

type noopNode struct{ fs.Inode }

var (
	_ = (fs.NodeOnAdder)((*noopRoot)(nil))
	_ = (fs.NodeOpener)((*noopNode)(nil))
	_ = (fs.NodeGetattrer)((*noopNode)(nil))
)

func (r *noopRoot) OnAdd(ctx context.Context) {
	r.AddChild(noopFile, r.NewPersistentInode(ctx, &noopNode{}, fs.StableAttr{Mode: syscall.S_IFREG}), false)
}

func (n *noopNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (n *noopNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o666
	return 0
}

// mountNoop mounts the no-op filesystem on dir, served by this process.
func mountNoop(dir string) (*fuse.Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	zero := time.Duration(0)
	return fs.Mount(dir, &noopRoot{}, &fs.Options{EntryTimeout: &zero, AttrTimeout: &zero, NegativeTimeout: &zero,
		MountOptions: fuse.MountOptions{Name: "lockbench-noop", DirectMountStrict: true, ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC}})
}
