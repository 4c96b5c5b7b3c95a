//go:build linux

package fusefs

import (
	"syscall"
	"time"
)

// Events hears what a mount does with its locks, for monitoring (package
// metrics counts them for Prometheus). Its methods are called on the
// goroutines that serve FUSE requests and releases, concurrently; they must
// return promptly, and they cannot fail a request.
type Events interface {
	// Waiting is told +1 when an open starts to wait for a held lock, and
	// -1 when that wait ends, however it ends.
	Waiting(delta int)
	// Acquire is told how each open for writing (each attempt to take a
	// lock) ended and, when it took the lock, how long it waited.
	Acquire(result AcquireResult, waited time.Duration)
	// Release is told of each lock that the mount stopped holding, how
	// long it held it, and how the release went.
	Release(result ReleaseResult, held time.Duration)
	// Broken is told, once per lock, that a lock held through the mount was
	// found broken by someone else (a message write or the release found
	// another record, or none).
	Broken()
	// LeaseLost is told, once per lock, that a lock held through the mount
	// in a lease directory lost its lease (nfslock.ErrLost).
	LeaseLost()
	// StaleCleanup is told of each lock of a dead holder that an
	// acquisition through the mount removed.
	StaleCleanup()
	// BackingError is told of an operation on the backing directory that
	// failed with errno (not a held or free lock, which are answers).
	BackingError(op Operation, errno syscall.Errno)
}

// An AcquireResult is how an open for writing ended.
type AcquireResult string

const (
	Acquired    AcquireResult = "acquired"    // the open holds the lock
	Busy        AcquireResult = "busy"        // held, and the open does not wait (O_NONBLOCK): EAGAIN
	Exists      AcquireResult = "exists"      // held, and the open has O_EXCL: EEXIST
	Interrupted AcquireResult = "interrupted" // the caller's signal ended the wait: EINTR
	Stopping    AcquireResult = "shutdown"    // the daemon is stopping: EINTR or ESHUTDOWN
	Failed      AcquireResult = "error"       // any other error
)

// A ReleaseResult is how a lock the mount held ended.
type ReleaseResult string

const (
	Released  ReleaseResult = "released"  // removed by its release
	WasBroken ReleaseResult = "broken"    // someone else had broken it; nothing removed
	LeaseGone ReleaseResult = "lost"      // its lease was lost before; nothing removed
	Abandoned ReleaseResult = "abandoned" // the release kept failing as the daemon stopped: the lock stays
)

// An Operation is what the mount was doing with the backing directory.
type Operation string

const (
	OpAcquire Operation = "acquire" // taking a lock
	OpRelease Operation = "release" // releasing one (each failed try)
	OpRead    Operation = "read"    // reading a holder's record
	OpWrite   Operation = "write"   // setting a held lock's message
	OpStat    Operation = "stat"    // a lock's attributes
	OpRemove  Operation = "remove"  // rm of a lock file
)

// acquireResult names how an open that answered errno ended; stopping
// tells whether the daemon has begun to stop.
func acquireResult(errno syscall.Errno, stopping bool) AcquireResult {
	switch {
	case errno == 0:
		return Acquired
	case errno == syscall.ESHUTDOWN || errno == syscall.EINTR && stopping:
		return Stopping
	case errno == syscall.EINTR:
		return Interrupted
	case errno == syscall.EAGAIN:
		return Busy
	case errno == syscall.EEXIST:
		return Exists
	}
	return Failed
}

// noEvents is the Events of a mount that nobody monitors.
type noEvents struct{}

func (noEvents) Waiting(int)                           {}
func (noEvents) Acquire(AcquireResult, time.Duration)  {}
func (noEvents) Release(ReleaseResult, time.Duration)  {}
func (noEvents) Broken()                               {}
func (noEvents) LeaseLost()                            {}
func (noEvents) StaleCleanup()                         {}
func (noEvents) BackingError(Operation, syscall.Errno) {}
