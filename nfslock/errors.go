//go:build linux

package nfslock

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors for what callers branch on. Errors returned by this
// package wrap them, so test with errors.Is.
var (
	// ErrLocked: the lock is held by someone else. The error is a *HeldError.
	ErrLocked = errors.New("lock is held")
	// ErrNotLocked: there is no lock at the path (P.nfs_lock does not exist),
	// or a Lock was released already or removed by someone else.
	ErrNotLocked = errors.New("not locked")
	// ErrCorrupt: P.nfs_lock exists but does not hold a holder record.
	ErrCorrupt = errors.New("corrupt lock record")
	// ErrNotRecord: a file that only a lock record may be removed in place
	// of is something else (a data file, a directory, a symbolic link).
	ErrNotRecord = errors.New("not a lock record")
)

// HeldError reports a lock held by someone else. It matches ErrLocked, and
// ErrCorrupt as well when the record could not be parsed.
type HeldError struct {
	Path string // the lock path P, as the caller named it
	// Holder is the holder as Inspect describes it. Its State is zero
	// when no record could be read because the lock changed hands
	// between the attempt and the read.
	Holder Holder

	file     fileID    // which version of P.nfs_lock was read
	leaseEnd time.Time // when the lease it is held by may have expired, by the local clock
}

func (e *HeldError) Error() string {
	h := e.Holder
	held := ""
	if !h.Since.IsZero() {
		held = fmt.Sprintf(", held for %s", time.Since(h.Since).Round(time.Millisecond))
	}
	switch h.State {
	case 0:
		return fmt.Sprintf("nfslock: %s: locked (the lock changed hands while it was being read)", e.Path)
	case HolderCorrupt:
		return fmt.Sprintf("nfslock: %s: locked by an unknown holder (unparsable record %q%s)", e.Path, h.Raw, held)
	}
	return fmt.Sprintf("nfslock: %s: locked by pid %d on %s (message %q%s)",
		e.Path, h.Record.Pid, h.Record.Host, h.Record.Message, held)
}

// Is makes errors.Is(err, ErrLocked) true, and errors.Is(err, ErrCorrupt)
// for an unparsable record.
func (e *HeldError) Is(target error) bool {
	return target == ErrLocked || (e.Holder.State == HolderCorrupt && target == ErrCorrupt)
}
