package faultfs

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/nfslockfs/nfslockfs/internal/mountinfo"
	"golang.org/x/sys/unix"
)

const (
	// unmountTimeout bounds how long Unmount waits for the FUSE connection to end.
	unmountTimeout = 10 * time.Second
	// foreignGrace is how long the connection may outlive the mount in this
	// mount namespace before Unmount aborts it (see unmount).
	foreignGrace = time.Second
)

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
	conn       uint32 // the FUSE connection's number in /sys/fs/fuse/connections

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
	var st unix.Stat_t
	if err := unix.Stat(mountpoint, &st); err == nil {
		f.conn = unix.Minor(st.Dev)
	}
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
// detached lazily and the error says so. If the mount lives on only in
// other mount namespaces (a simulated host of this or another test,
// started while it was mounted, copies it), nothing of this test uses it
// any more: Unmount aborts the FUSE connection, which ends those copies
// too (they fail with ENOTCONN), as another test's hosts must not keep
// this one from ending. If the connection still does not end, Unmount gives
// up waiting for it after a while. Calling Unmount again returns the first
// call's result.
func (f *FS) Unmount() error {
	f.unmountOnce.Do(func() { f.unmountErr = f.unmount() })
	return f.unmountErr
}

func (f *FS) unmount() error {
	f.Resume()
	done := make(chan error, 1)
	go func() { done <- f.server.Unmount() }() // returns once the connection has ended
	timeout := time.After(unmountTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var goneHere time.Time // when the mount was first seen gone from this namespace
	aborted := false
	for {
		select {
		case err := <-done:
			if err == nil {
				return nil
			}
			if derr := syscall.Unmount(f.mountpoint, syscall.MNT_DETACH); derr != nil {
				return fmt.Errorf("faultfs: unmount %s: %w (lazy unmount: %v)", f.mountpoint, err, derr)
			}
			return fmt.Errorf("faultfs: unmount %s: %w; detached lazily", f.mountpoint, err)
		case <-tick.C:
			switch {
			case aborted || isMounted(f.mountpoint):
			case goneHere.IsZero():
				goneHere = time.Now()
			case time.Since(goneHere) >= foreignGrace:
				if err := f.abort(); err != nil {
					return fmt.Errorf("faultfs: unmount %s: the FUSE connection outlives the mount (a copy in another mount namespace), and aborting it failed: %w", f.mountpoint, err)
				}
				aborted = true
			}
		case <-timeout:
			return fmt.Errorf("faultfs: unmount %s: FUSE connection still in use after %v (aborted: %v)", f.mountpoint, unmountTimeout, aborted)
		}
	}
}

// abort aborts the mount's FUSE connection through the fusectl filesystem.
func (f *FS) abort() error {
	if f.conn == 0 {
		return errors.New("connection number unknown")
	}
	abort := func() error {
		return os.WriteFile(fmt.Sprintf("%s/%d/abort", fusectlDir, f.conn), []byte("1"), 0)
	}
	err := abort()
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// fusectl may not be mounted (nothing in a minimal system mounts it,
	// and a test's namespace games can take it away): mount it. With it
	// mounted, a missing connection has ended by itself.
	if merr := syscall.Mount("fusectl", fusectlDir, "fusectl", 0, ""); merr != nil && !errors.Is(merr, syscall.EBUSY) {
		return fmt.Errorf("%w (mounting fusectl: %v)", err, merr)
	}
	if err := abort(); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// fusectlDir is where the fusectl filesystem shows the FUSE connections.
const fusectlDir = "/sys/fs/fuse/connections"

// isMounted reports whether a mount stands at mountpoint in this process's
// mount namespace (an unreadable mount table counts as mounted).
func isMounted(mountpoint string) bool {
	mounts, err := mountinfo.Read()
	return err != nil || slices.ContainsFunc(mounts, func(m mountinfo.Mount) bool { return m.Mountpoint == mountpoint })
}
