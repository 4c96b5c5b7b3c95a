//go:build linux

package nfslock

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Attempt files are normally removed at once; a process that dies between
// creating one and removing it leaves it behind. As Core does, attempt files
// older than attemptMaxAge are removed, except the newest attemptsKept.
const (
	attemptMaxAge = 5 * time.Minute
	attemptsKept  = 3
)

// lastAttemptSweep rate-limits sweeps per lock: listing a large directory
// over NFS is costly, and leftovers are rare.
var lastAttemptSweep sync.Map // normalized lock path → time.Time

// removeOldAttempts removes p's leftover attempt files, at most once per
// attemptMaxAge per lock in this process. It runs when a waiter starts
// waiting, so an uncontended acquire never lists the directory. Errors are
// ignored: the sweep is housekeeping. p is normalized.
func removeOldAttempts(p string, now time.Time) {
	if last, ok := lastAttemptSweep.Load(p); ok && now.Sub(last.(time.Time)) < attemptMaxAge {
		return
	}
	lastAttemptSweep.Store(p, now)
	// A daemon sees many lock names over its life: forget old sweeps.
	lastAttemptSweep.Range(func(k, last any) bool {
		if now.Sub(last.(time.Time)) >= attemptMaxAge {
			lastAttemptSweep.Delete(k)
		}
		return true
	})
	dir, base := filepath.Split(p)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	// Age is judged by the change time, which only the file server sets:
	// over NFS, a file being created with O_EXCL carries the create
	// verifier as its mtime (a date decades ago) until the client's
	// SETATTR, and by mtime a live acquirer's attempt file would be swept.
	type leftover struct {
		name  string
		ctime time.Time
	}
	var found []leftover
	for _, e := range entries {
		if !isAttemptFileOf(e.Name(), base) {
			continue
		}
		if info, err := e.Info(); err == nil {
			ctim := info.Sys().(*syscall.Stat_t).Ctim
			found = append(found, leftover{filepath.Join(dir, e.Name()), time.Unix(ctim.Unix())})
		}
	}
	slices.SortFunc(found, func(a, b leftover) int { return b.ctime.Compare(a.ctime) })
	for i, f := range found {
		if i >= attemptsKept && now.Sub(f.ctime) > attemptMaxAge {
			os.Remove(f.name)
		}
	}
}
