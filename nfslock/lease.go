//go:build linux

package nfslock

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Leases are opt-in per directory: a directory whose file LeaseFile names a
// duration makes every lock in it a lease of that duration, kept on the NFS
// server's clock. The holder renews its lock every third of the duration;
// a contender on any host breaks a lock that has not been renewed for the
// whole duration, by the server's clock (see docs/design.md, "Leases"). A
// directory without the file keeps plain locks, exactly as Core's.

// LeaseFile is the name of the file that makes the locks of its directory
// leases. It holds one duration, in Go's syntax ("30s", "1m30s") or in
// seconds ("30", "2.5"), on a line of its own; blank lines and lines
// starting with # are ignored. Every host reads it; a host caches what it
// read for 10 seconds, so a change takes effect on every host within that
// time, for the locks taken from then on: a lock keeps the duration it
// was taken with until it is released.
const LeaseFile = ".nfslock-lease"

// MinLease and MaxLease bound the durations LeaseFile may give. A lease is
// renewed every third of its duration and given up by its holder when it
// has not been renewed for five sixths of it, so the duration must cover
// several NFS round trips, also on a slow day.
const (
	MinLease = time.Second
	MaxLease = 24 * time.Hour
)

// ErrLost: a lock's lease was lost. Its holder could not renew it in time,
// or found it broken or replaced, so another holder may have it now. Every
// later call on the Lock fails with an error matching it.
var ErrLost = errors.New("lock lost")

// Lease describes the lease of a lock held in a lease directory.
type Lease struct {
	// Duration is the lease the holder keeps: the one it declared when it
	// took the lock, or the directory's, for a holder that declared none
	// (a Core process, or a holder that took it before the directory
	// opted in).
	Duration time.Duration
	// Renewed is the modification time of P.nfs_lock, set by the NFS
	// server when the holder last renewed (or took) the lock.
	Renewed time.Time
	// Token is the holder's fencing token, 0 when it declared none.
	Token uint64
	// HeldSince is when the holder took the lock, by the server's clock;
	// zero when the holder declared no token.
	HeldSince time.Time
}

// leaseConfigTTL is how long a host trusts what it read of a directory's
// LeaseFile (or of its absence): every acquire would otherwise pay an NFS
// round trip for it. LeaseFile's documentation states its value.
const leaseConfigTTL = 10 * time.Second

type leaseConfig struct {
	dur  time.Duration // 0: the directory has no leases
	err  error
	read time.Time
}

var leaseConfigs sync.Map // absolute directory → leaseConfig

// dirLease returns the lease duration of the directory of the lock path p,
// 0 if it has none. An unreadable or invalid LeaseFile is an error: taking
// a lock there could not honour what the operators asked for.
func dirLease(p string) (time.Duration, error) {
	dir, err := filepath.Abs(filepath.Dir(p))
	if err != nil {
		dir = filepath.Dir(p)
	}
	if c, ok := leaseConfigs.Load(dir); ok && now().Sub(c.(leaseConfig).read) < leaseConfigTTL {
		if err := c.(leaseConfig).err; err != nil {
			return 0, fmt.Errorf("nfslock: %s: %w", p, err)
		}
		return c.(leaseConfig).dur, nil
	}
	dur, err := readLeaseFile(filepath.Join(dir, LeaseFile))
	leaseConfigs.Store(dir, leaseConfig{dur: dur, err: err, read: now()})
	if err != nil {
		return 0, fmt.Errorf("nfslock: %s: %w", p, err)
	}
	return dur, nil
}

func readLeaseFile(name string) (time.Duration, error) {
	data, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading the lease setting: %w", err)
	}
	dur, err := ParseLease(data)
	if err != nil {
		return 0, fmt.Errorf("the lease setting %s: %w", name, err)
	}
	return dur, nil
}

// ParseLease parses the contents of a LeaseFile. Its errors match
// syscall.EINVAL and say what is wrong.
func ParseLease(data []byte) (time.Duration, error) {
	var values []string
	for line := range bytes.Lines(data) {
		s := strings.TrimSpace(string(line))
		if s != "" && !strings.HasPrefix(s, "#") {
			values = append(values, s)
		}
	}
	if len(values) != 1 {
		return 0, fmt.Errorf("want one duration (such as 30s) on a line of its own, found %d values: %w", len(values), syscall.EINVAL)
	}
	dur, err := time.ParseDuration(values[0])
	if err != nil {
		secs, ferr := strconv.ParseFloat(values[0], 64)
		if ferr != nil {
			return 0, fmt.Errorf("%q is not a duration (such as 30s) nor a number of seconds: %w", values[0], syscall.EINVAL)
		}
		dur = time.Duration(secs * float64(time.Second))
	}
	if dur < MinLease || dur > MaxLease {
		return 0, fmt.Errorf("lease %v is outside [%v, %v]: %w", dur, MinLease, MaxLease, syscall.EINVAL)
	}
	return dur, nil
}

// now reads the local clock. Lease code measures only intervals with it
// (Go's monotonic clock), never compares it with a file's time: tests skew
// it by minutes (localClock) to show that nothing depends on it agreeing
// with the server.
func now() time.Time { return (*localClock.Load())() }

var localClock atomic.Pointer[func() time.Time]

func init() {
	f := time.Now
	localClock.Store(&f)
}

// leaseMargin is how long before the server could judge a lease expired
// its holder gives it up: it must cover the delay of a request to the
// server and the drift of the holder's clock against the server's over one
// lease. See docs/design.md.
func leaseMargin(dur time.Duration) time.Duration { return dur / 6 }

// ServerTime returns the current time of the server that stores dir: it
// creates a probe file there, sets its times with UTIME_NOW (NFS sends
// SET_TO_SERVER_TIME, so the server's clock sets them) and reads them back.
// It needs write permission on dir.
func ServerTime(dir string) (time.Time, error) {
	t, err := serverTime(filepath.Join(dir, ".nfslock-clock"))
	if err != nil {
		return time.Time{}, fmt.Errorf("nfslock: %s: reading the server's clock: %w", dir, err)
	}
	return t, nil
}

// serverTime probes the server's clock with a fresh attempt file of p,
// removed at once (a leftover is swept as attempt files are).
func serverTime(p string) (time.Time, error) {
	name := attemptFile(p)
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
	if err != nil {
		return time.Time{}, err
	}
	defer os.Remove(name)
	defer f.Close()
	if err := touchNow(f); err != nil {
		return time.Time{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return time.Time{}, err
	}
	return fi.ModTime(), nil
}

// touchNow sets the open file's access and modification times to the
// current time of the file's server: futimens(fd, {UTIME_NOW, UTIME_NOW}).
func touchNow(f *os.File) error {
	ts := [2]syscall.Timespec{{Nsec: utimeNow}, {Nsec: utimeNow}}
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_UTIMENSAT, f.Fd(), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
		if errno != syscall.EINTR {
			if errno != 0 {
				return &os.PathError{Op: "utimensat", Path: f.Name(), Err: errno}
			}
			return nil
		}
	}
}

const utimeNow = (1 << 30) - 1 // UTIME_NOW of <sys/stat.h>

// DirLease returns the lease duration of the directory of the lock path
// (see LeaseFile), 0 if its locks are not leases. An unreadable or invalid
// LeaseFile gives an error naming it.
func DirLease(path string) (time.Duration, error) {
	p, err := NormalizePath(path)
	if err != nil {
		return 0, err
	}
	return dirLease(p)
}
