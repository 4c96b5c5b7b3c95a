package faultfs

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// unmountTimeout bounds how long Unmount waits for the FUSE connection to end.
const unmountTimeout = 10 * time.Second

// Options configures a mount.
type Options struct {
	// MultiUser lets processes of every uid use the mount, with the kernel
	// checking permissions against the backing files' modes (allow_other and
	// default_permissions), as on an NFS export shared by several users. It
	// costs a GETATTR for each permission check, because nothing is cached;
	// without it only root may use the mount.
	MultiUser bool

	// Debug logs every FUSE request and reply through the standard logger.
	Debug bool
}

// FS is a mounted fault-injecting filesystem. Its methods are safe for
// concurrent use.
type FS struct {
	server     *fuse.Server
	mountpoint string

	loseLinkReplies atomic.Bool
	latency         atomic.Int64 // a time.Duration

	mu     sync.Mutex
	counts Counts
	faults map[Op]fault
	outage chan struct{} // non-nil while hung; closed by Resume

	unmountOnce sync.Once
	unmountErr  error
}

// Mount mounts a passthrough view of the directory backing on mountpoint.
// The caller must Unmount it.
func Mount(backing, mountpoint string, opts Options) (*FS, error) {
	root, err := fs.NewLoopbackRoot(backing)
	if err != nil {
		return nil, fmt.Errorf("faultfs: backing directory: %w", err)
	}
	var zero time.Duration // go-fuse defaults nil timeouts to one second
	bridge := fs.NewNodeFS(root, &fs.Options{
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
	})
	mountOpts := fuse.MountOptions{
		FsName:            backing,
		Name:              "faultfs",
		DirectMount:       true,
		DirectMountStrict: os.Geteuid() == 0, // there is no fusermount to fall back to
		// Without passthrough, READ and WRITE come to the gate instead of
		// the kernel sending them to the backing file directly.
		DisabledCapabilities: fuse.CAP_PASSTHROUGH,
		Debug:                opts.Debug,
	}
	if opts.MultiUser {
		mountOpts.AllowOther = true
		mountOpts.Options = append(mountOpts.Options, "default_permissions")
	}
	f := &FS{mountpoint: mountpoint, counts: Counts{}, faults: map[Op]fault{}}
	server, err := fuse.NewServer(&gatedFS{RawFileSystem: bridge, fs: f}, mountpoint, &mountOpts)
	if err != nil {
		return nil, fmt.Errorf("faultfs: mount %s: %w", mountpoint, err)
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		server.Unmount()
		return nil, fmt.Errorf("faultfs: mount %s: %w", mountpoint, err)
	}
	f.server = server
	// The kernel stops asking for extended attributes once refused (see
	// gatedFS.GetXAttr); refuse it now rather than on the first write.
	unix.Getxattr(mountpoint, "security.capability", nil)
	f.ResetCounts()
	return f, nil
}

// Mountpoint returns the directory the filesystem is mounted on.
func (f *FS) Mountpoint() string { return f.mountpoint }

// Unmount ends any outage, so that hung requests finish, and unmounts. If
// the mount is busy (a process has a file or directory open in it), it is
// detached lazily and the error says so. If the mount lives on in another
// mount namespace (a simulated host started after Mount and still running),
// the FUSE connection outlives the unmount and Unmount gives up waiting for
// it after a while. Calling Unmount again returns the first call's result.
func (f *FS) Unmount() error {
	f.unmountOnce.Do(func() { f.unmountErr = f.unmount() })
	return f.unmountErr
}

func (f *FS) unmount() error {
	f.Resume()
	done := make(chan error, 1)
	go func() { done <- f.server.Unmount() }() // returns once the connection has ended
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		if derr := syscall.Unmount(f.mountpoint, syscall.MNT_DETACH); derr != nil {
			return fmt.Errorf("faultfs: unmount %s: %w (lazy unmount: %v)", f.mountpoint, err, derr)
		}
		return fmt.Errorf("faultfs: unmount %s: %w; detached lazily", f.mountpoint, err)
	case <-time.After(unmountTimeout):
		return fmt.Errorf("faultfs: unmount %s: FUSE connection still in use after %v (is the mount alive in another mount namespace?)", f.mountpoint, unmountTimeout)
	}
}
