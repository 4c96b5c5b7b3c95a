//go:build linux

package fusefs

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/sirupsen/logrus"
)

// Options configure a mount.
type Options struct {
	// Format is how reads show a lock's holder.
	Format Format
	// Log gets one info line per acquire and release, and warnings.
	// Nil means logrus's standard logger.
	Log logrus.FieldLogger
	// AllowOther lets every user use the mount, with the kernel checking
	// their permissions against the backing files' modes and owners
	// (default_permissions). Opening a held lock to wait for it needs write
	// permission on its lock file, which the lock library creates with mode
	// 0666 less the process's umask: a daemon for many users runs with
	// umask 0 (cmd/nfslockfs does).
	AllowOther bool
	// Debug logs every FUSE request and reply at debug level.
	Debug bool
	// NoLockOnOpen makes opening a lock file for writing take no lock:
	// only flock(2), fcntl(2) and lockf(3) on it do. It suits programs that
	// open a lock file for writing and then lock it with lockf(F_TLOCK),
	// such as pidfile daemons, which expect "already running" at once
	// rather than an open that waits.
	NoLockOnOpen bool
	// Events hears of acquisitions, releases and errors, for monitoring.
	// Nil means nobody listens.
	Events Events
}

// A Server is a mounted nfslockfs.
type Server struct {
	fsys       *filesystem
	fuse       *fuse.Server
	mountpoint string
	direct     bool          // mounted by mount(2) itself, not fusermount
	done       chan struct{} // closed when the mount is gone and its locks are settled
}

// Mount mounts the locks of backingDir on mountpoint, which must be an
// empty directory, and serves them until the mount goes away (Shutdown, or
// umount from outside). As root it mounts with mount(2); otherwise with
// fusermount. The dead mount of a killed nfslockfs at mountpoint is
// detached first; a live one, or a mountpoint that overlaps backingDir, is
// an error. The mountpoint directory is left immutable, so that nothing can
// be created in it while no daemon serves it (docs/design.md says why).
func Mount(backingDir, mountpoint string, opts Options) (*Server, error) {
	backing, err := filepath.Abs(backingDir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(backing); err != nil {
		return nil, fmt.Errorf("backing directory: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("backing directory %s is not a directory", backing)
	}
	if backing, err = filepath.EvalSymlinks(backing); err != nil {
		return nil, fmt.Errorf("backing directory: %w", err)
	}
	if opts.Log == nil {
		opts.Log = logrus.StandardLogger()
	}
	direct := os.Geteuid() == 0
	mnt, err := prepareMountpoint(backing, mountpoint, direct, opts.Log)
	if err != nil {
		return nil, err
	}

	if opts.Events == nil {
		opts.Events = noEvents{}
	}
	fsys := newFilesystem(opts.Format, opts.Log, opts.Events)
	fsys.backing, fsys.mountpoint = backing, mnt
	fsys.noLockOnOpen = opts.NoLockOnOpen
	root := &dirNode{fsys: fsys, path: backing}
	zero := time.Duration(0)
	fopts := &fs.Options{
		// The kernel must not cache what other hosts change.
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		NullPermissions: true, // the backing files' modes, as they are
		MountOptions: fuse.MountOptions{
			FsName:            backing,
			Name:              "nfslockfs",
			AllowOther:        opts.AllowOther,
			DirectMountStrict: direct,
			// O_TRUNC comes with OPEN instead of as a separate SETATTR.
			ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
			// ls needs names only; READDIRPLUS would read every record.
			DisableReadDirPlus: true,
			// flock(2) and fcntl(2) locks come to the daemon, which makes
			// them cluster locks (filelocks.go), instead of being granted
			// by the kernel on this node alone.
			EnableLocks: true,
			Debug:       opts.Debug,
			Logger:      log.New(logWriter{opts.Log, opts.Debug}, "", 0),
		},
	}
	if opts.AllowOther {
		fopts.MountOptions.Options = append(fopts.MountOptions.Options, "default_permissions")
	}
	fsys.flushes = &flushOwners{RawFileSystem: fs.NewNodeFS(root, fopts)}
	srv, err := fuse.NewServer(fsys.flushes, mnt, &fopts.MountOptions)
	if err != nil {
		return nil, fmt.Errorf("mounting %s: %w", mnt, err)
	}
	s := &Server{fsys: fsys, fuse: srv, mountpoint: mnt, direct: direct, done: make(chan struct{})}
	go s.serve()
	if err := srv.WaitMount(); err != nil {
		// The mount did not come up: end the serving goroutine, which
		// returns once the connection is gone.
		srv.Unmount()
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
		}
		return nil, fmt.Errorf("mounting %s: %w", mnt, err)
	}
	opts.Log.WithFields(logrus.Fields{"backing": backing, "mountpoint": mnt, "format": opts.Format.String()}).Info("mounted")
	return s, nil
}

// serve answers the kernel until the mount goes away, then settles the
// locks whose RELEASE never came.
func (s *Server) serve() {
	defer close(s.done)
	s.fuse.Serve()
	s.fsys.settle()
	s.fsys.log.WithField("mountpoint", s.mountpoint).Info("unmounted")
}

// Done is closed when the mount is gone, by Shutdown or from outside, and
// the filesystem has settled its locks.
func (s *Server) Done() <-chan struct{} { return s.done }
