//go:build linux

package nfslock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// A process that holds a lock in another process's name (WithOwner) may
// rightly hold it after that process has exited. The FUSE daemon takes a
// lock for the process that opens a file; when that process exits while a
// child it forked keeps the file open, the daemon renames the record to the
// child. Between the exit and the rename the record names a dead process of
// this host, and any other process of the host would clean the lock up as
// stale and take it while the child still holds it: a false exclusion, seen
// once in the cluster chaos when flock(1) was killed while its command ran.
//
// A vouch closes that window. While the lock is held, the process that holds
// it keeps a host-local symbolic link named after the lock file's device and
// inode, whose target names the vouching process (pid and start time). A
// process of this package that finds the record's process of this host dead
// looks for a vouch, and while the vouching process runs, the holder counts
// as alive. symlink(2) makes the name and its content in one step, so a vouch
// is never seen half-written. The vouches live beside the host locks (see
// hostLockDir), on the host's own filesystem: vouching costs no round trip to
// the NFS server, and only this host's processes, the only ones that judge
// this host's holders, need to see it. A vouch outlives the lock files it
// vouches for: it is made after the link and removed after the release's
// removal.
//
// Limits: processes that are not of this package (Core) do not look for
// vouches. A vouch left by a process that died is ignored (its process is
// dead) and replaced by the next vouch for the same device and inode.

// vouchDir is where the vouches live, created world-writable and sticky as
// the host locks' directory is.
var vouchDir = sync.OnceValue(func() string {
	dir := filepath.Join(hostLockDir(), "vouch")
	if os.Mkdir(dir, 0o777) == nil {
		os.Chmod(dir, 0o777|os.ModeSticky)
	}
	return dir
})

func vouchName(dev, ino uint64) string {
	return filepath.Join(vouchDir(), fmt.Sprintf("%d.%d", dev, ino))
}

// selfVouch is a vouch's target: this process's pid and start time, in
// microseconds since the epoch.
var selfVouch = sync.OnceValues(func() (string, error) {
	start, err := processStart(os.Getpid())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %d", os.Getpid(), start.UnixMicro()), nil
})

// vouch makes this process answer for the lock file dev, ino to the other
// processes of this host, until unvouch. Its errors are the host
// filesystem's.
func vouch(dev, ino uint64) error {
	target, err := selfVouch()
	if err != nil {
		return err
	}
	name := vouchName(dev, ino)
	err = os.Symlink(target, name)
	if errors.Is(err, os.ErrExist) {
		// Left by a vouching process that died, for a file whose inode
		// number the server has given again.
		os.Remove(name)
		err = os.Symlink(target, name)
	}
	return err
}

// unvouch ends this process's vouch for the lock file dev, ino.
func unvouch(dev, ino uint64) { os.Remove(vouchName(dev, ino)) }

// vouched reports whether a live process of this host vouches for the lock
// file fi.
func vouched(fi os.FileInfo) bool {
	id := fileIDOf(fi)
	target, err := os.Readlink(vouchName(id.dev, id.ino))
	if err != nil {
		return false
	}
	var pid int
	var micros int64
	if _, err := fmt.Sscanf(target, "%d %d", &pid, &micros); err != nil {
		return false
	}
	return alive(Record{Pid: pid, StartTime: time.UnixMicro(micros)})
}
