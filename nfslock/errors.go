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
)

// HeldError reports a lock held by someone else. It matches ErrLocked, and
// ErrCorrupt as well when the record could not be parsed.
type HeldError struct {
	Path   string    // the lock path P, as the caller named it
	Holder Record    // zero when Corrupt
	Since  time.Time // modification time of P.nfs_lock: when the holder acquired it
	// Raw is the record as read; Corrupt reports that it did not parse (a v1
	// writer may be mid-write, so this is retriable).
	Raw     []byte
	Corrupt bool

	file fileID // which version of P.nfs_lock was read
}

func (e *HeldError) Error() string {
	held := ""
	if !e.Since.IsZero() {
		held = fmt.Sprintf(", held for %s", time.Since(e.Since).Round(time.Millisecond))
	}
	if e.Holder.Host == "" && !e.Corrupt {
		return fmt.Sprintf("nfslock: %s: locked (the lock changed hands while it was being read)", e.Path)
	}
	if e.Corrupt {
		return fmt.Sprintf("nfslock: %s: locked by an unknown holder (unparsable record %q%s)", e.Path, e.Raw, held)
	}
	return fmt.Sprintf("nfslock: %s: locked by pid %d on %s (message %q%s)",
		e.Path, e.Holder.Pid, e.Holder.Host, e.Holder.Message, held)
}

// Is makes errors.Is(err, ErrLocked) true, and errors.Is(err, ErrCorrupt)
// for an unparsable record.
func (e *HeldError) Is(target error) bool {
	return target == ErrLocked || (e.Corrupt && target == ErrCorrupt)
}
