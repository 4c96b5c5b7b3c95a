//go:build linux

package nfslock

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Removals and replacements of a lock file by the processes of one host
// (release, record change, stale cleanup, break) serialize on a host-local
// flock, chosen by the lock file's device and inode, rather than on an flock
// of P.nfs_lock itself, the obvious choice. On an NFS client an flock is
// sent to the server as a byte-range lock: it depends on the lock daemons
// (NLM, NFSv4 state) this package exists to avoid, can hang with them, and
// NFSv4 refuses an exclusive one on a read-only descriptor. Cleaners only
// ever judge holders of their own host, so a lock that only this host's
// processes see serializes exactly the processes that can race. When no
// host-local lock can be had, the flock of P.nfs_lock is the fallback.
//
// The host-local locks are a fixed set of files, never removed (removing a
// lock file that another process may be about to flock breaks the flock):
// two lock files that share a bucket only wait for each other a little.
const hostLockBuckets = 256

// hostLockDir is where the host-local locks live: /run/lock is the system's
// directory for lock files, world-writable and sticky; os.TempDir otherwise.
var hostLockDir = sync.OnceValue(func() string {
	base := "/run/lock"
	if fi, err := os.Stat(base); err != nil || !fi.IsDir() {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "nfslock")
	if os.Mkdir(dir, 0o777) == nil {
		// Every user's processes share the buckets; the sticky bit keeps
		// them from removing each other's.
		os.Chmod(dir, 0o777|os.ModeSticky)
	}
	return dir
})

// lockHost takes the host-local lock for the lock file id, or, failing
// that, an flock of the open lock file f itself. Closing the returned file
// releases it.
func lockHost(id fileID, f *os.File) (*os.File, error) {
	h := fnv.New32a()
	fmt.Fprintf(h, "%d:%d", id.dev, id.ino)
	bucket, err := openBucket(filepath.Join(hostLockDir(), fmt.Sprintf("%03d", h.Sum32()%hostLockBuckets)))
	if err != nil {
		return nil, flock(f)
	}
	if err := flock(bucket); err != nil {
		bucket.Close()
		return nil, flock(f)
	}
	return bucket, nil
}

// openBucket opens a host-local lock file, creating it if needed. It opens
// an existing file without O_CREAT: with fs.protected_regular, O_CREAT on
// another user's file in a sticky directory is refused. Anything but a
// regular file there (another user's FIFO, whose open would block) gives
// an error matching syscall.EINVAL (see openHostFile).
func openBucket(name string) (*os.File, error) {
	for range 3 {
		f, err := openHostFile(name)
		if !errors.Is(err, os.ErrNotExist) {
			return f, err
		}
		f, err = os.OpenFile(name, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, os.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("%s: created and removed under us: %w", name, syscall.EAGAIN)
}

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			return err
		}
	}
}

// openHostFile opens the existing host-local file name for reading, never
// blocking and never following a symbolic link: in a world-writable
// directory another user may have put a FIFO there, whose open would wait
// for a writer, or a link to a file of theirs choosing. Anything but a
// regular file gives an error matching syscall.EINVAL, a symbolic link
// ELOOP; other errors are open(2)'s.
func openHostFile(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is a %v, not a regular file: %w", name, fi.Mode().Type(), syscall.EINVAL)
		}
		return nil, err
	}
	return f, nil
}
