//go:build linux

package fusefs

import (
	"path/filepath"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// ownCloseGrace is how long an open by the process that holds the lock,
// but shows no descriptor of it, waits for the holding file's RELEASE
// before it counts as a reopen of its own lock. The process has most
// likely just closed it (the kernel sends RELEASE shortly after close
// returns); a wrong EDEADLK would fail a correct program, a wait only
// delays it.
const ownCloseGrace = 500 * time.Millisecond

// callerHolds reports whether the process c already holds the lock at path
// through another open file of this mount. Its open would wait for itself
// forever, so it gets EDEADLK instead. A process is its thread group as it
// runs now: another thread of it is the same process; a forked child, even
// one that shares the open file, is not (it waits, as with flock(2)), nor
// is a new process that reuses the pid of a holder that exited (the record's
// start time tells them apart).
//
// A process that closed one of the holding file's descriptors within
// closeWindow first waits up to releaseGrace for its RELEASE (see
// awaitRelease). A process that has a descriptor of the file open is then
// answered at once.
// One that has none and has closed one of the holding file's descriptors
// does not hold it: the RELEASE is on its way (it can take longer than any
// grace on a slow server), or a copy in another process (a forked child)
// holds the lock, for which it waits as with flock(2). One that has none
// and closed none (it runs in another mount namespace, where the file has
// another path) waits up to ownCloseGrace for the release.
//
// Limits: a process of another mount namespace that closes a dup of the
// holding descriptor and then opens the lock again waits for itself.
func (fsys *filesystem) callerHolds(path string, c caller) bool {
	h := fsys.holderOf(path)
	if h == nil || c.pid == 0 || h.owner.pid != c.pid {
		return false
	}
	// Most often the process has just closed it and reopens it: its
	// RELEASE comes in a moment, and then there is nothing to look up in
	// /proc (the descriptors of the caller, one readlink each).
	h.awaitRelease()
	select {
	case <-h.released:
		return false
	default:
	}
	if !hasOpen(c.pid, fsys.mountPath(path)) {
		if h.closedAt.Load() != 0 {
			return false
		}
		t := time.NewTimer(ownCloseGrace)
		defer t.Stop()
		select {
		case <-h.released:
			return false
		case <-t.C:
		}
	}
	holder, err := nfslock.Inspect(path)
	return err == nil && holder.Record.Pid == c.pid && holder.State == nfslock.HolderAlive
}

// mountPath returns the path through the mount of the backing path p.
func (fsys *filesystem) mountPath(p string) string {
	rel, err := filepath.Rel(fsys.backing, p)
	if err != nil {
		return ""
	}
	return filepath.Join(fsys.mountpoint, rel)
}

// hasOpen reports whether process pid has a descriptor open on the file
// at path, as /proc/PID/fd shows it.
func hasOpen(pid int, path string) bool {
	return len(fdsOn(pid, path)) > 0
}
