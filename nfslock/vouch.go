//go:build linux

package nfslock

import (
	"errors"
	"fmt"
	"hash/fnv"
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
// inode and its record's hash, whose target names the vouching process (pid
// and start time). A
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

// vouchName names the vouch for the lock file dev, ino holding the record
// raw. The record's hash makes a vouch specific to one lock: a vouch that
// outlives its lock (whose holder has yet to learn that it was broken)
// vouches for no later lock file that gets the same inode number.
func vouchName(dev, ino uint64, raw []byte) string {
	h := fnv.New64a()
	h.Write(raw)
	return filepath.Join(vouchDir(), fmt.Sprintf("%d.%d.%016x", dev, ino, h.Sum64()))
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

// ownVouches maps each vouch this process made to the holder it made it
// for (a *Lock or a *SharedLock), so that one holder's end never removes
// another's vouch of the same name.
var ownVouches = struct {
	sync.Mutex
	m map[string]any
}{m: make(map[string]any)}

// vouch makes this process answer, for holder, for the lock file dev, ino
// holding raw, to the other processes of this host, until unvouch. Its
// errors are the host filesystem's.
func vouch(dev, ino uint64, raw []byte, holder any) error {
	target, err := selfVouch()
	if err != nil {
		return err
	}
	name := vouchName(dev, ino, raw)
	ownVouches.Lock()
	defer ownVouches.Unlock()
	err = os.Symlink(target, name)
	if errors.Is(err, os.ErrExist) {
		// Left by a vouching process that died, or by a holder of this
		// process whose lock was broken: that lock is gone.
		os.Remove(name)
		err = os.Symlink(target, name)
	}
	if err == nil {
		ownVouches.m[name] = holder
	}
	return err
}

// unvouch ends holder's vouch for the lock file dev, ino holding raw, if
// that vouch is still holder's.
func unvouch(dev, ino uint64, raw []byte, holder any) {
	name := vouchName(dev, ino, raw)
	ownVouches.Lock()
	defer ownVouches.Unlock()
	if ownVouches.m[name] == holder {
		delete(ownVouches.m, name)
		os.Remove(name)
	}
}

// EndVouch ends this process's vouch for the lock (WithVouch) without
// releasing it: from then on its record alone says whether it is held, as
// for any lock whose holder is another process. A server that stops
// serving its locks while their holders still run calls it, so that the
// locks become stale when those holders exit, whether or not this process
// lives on. It does nothing to a lock this process does not vouch for.
func (l *Lock) EndVouch() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.vouched {
		unvouch(l.dev, l.ino, l.data, l)
		l.vouched = false
	}
}

// EndVouch is Lock.EndVouch for a shared hold.
func (s *SharedLock) EndVouch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vouched {
		unvouch(s.dev, s.ino, s.data, s)
		s.vouched = false
	}
}

// vouched reports whether a live process of this host vouches for the lock
// file fi holding raw.
func vouched(fi os.FileInfo, raw []byte) bool {
	id := fileIDOf(fi)
	target, err := os.Readlink(vouchName(id.dev, id.ino, raw))
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
