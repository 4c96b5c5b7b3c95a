//go:build linux

package nfslock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// This file maps Core's Lock_file.Nfs API onto the handle API. Locks taken
// here are owned by the process and released by Unlock(path) or UnlockAll.

// Create takes the lock on path for this process without waiting (Core's
// create). A held lock gives an error matching ErrLocked.
func Create(path string, opts ...Option) error {
	_, err := TryLock(path, opts...)
	return err
}

// MustCreate is Create, panicking on failure (Core's create_exn).
func MustCreate(path string, opts ...Option) {
	if err := Create(path, opts...); err != nil {
		panic(err)
	}
}

// BlockingCreate takes the lock on path, waiting at most timeout (0: for
// ever). On timeout the error matches context.DeadlineExceeded and, if the
// lock was held (by this process too), ErrLocked, naming the holder.
func BlockingCreate(path string, timeout time.Duration, opts ...Option) error {
	ctx, cancel := timeoutContext(timeout)
	defer cancel()
	_, err := Acquire(ctx, path, opts...)
	return err
}

// timeoutContext ends after timeout, or never for Core's 0.
func timeoutContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout > 0 {
		return context.WithTimeout(context.Background(), timeout)
	}
	return context.WithCancel(context.Background())
}

// CriticalSection runs f while holding the lock on path, taken as by
// BlockingCreate, and releases it however f ends, panics included. It
// returns BlockingCreate's error if the lock was not taken (f does not run),
// else f's error, joined with the release's if that failed.
func CriticalSection(path string, timeout time.Duration, f func() error, opts ...Option) (err error) {
	ctx, cancel := timeoutContext(timeout)
	defer cancel()
	l, err := Acquire(ctx, path, opts...)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, l.Unlock()) }()
	return f()
}

// GetHostnameAndPid returns the holder's host and pid; ok is false when the
// record cannot be read (Core's get_hostname_and_pid).
func GetHostnameAndPid(path string) (host string, pid int, ok bool) {
	rec, err := ReadRecord(path)
	if err != nil {
		return "", 0, false
	}
	return rec.Host, rec.Pid, true
}

// GetMessage returns the record's message; ok is false when the record
// cannot be read (Core's get_message).
func GetMessage(path string) (msg string, ok bool) {
	rec, err := ReadRecord(path)
	if err != nil {
		return "", false
	}
	return rec.Message, true
}

// Unlock releases the lock on path if it was taken from this host by this
// process or by a process that is no longer running (Core's unlock). A lock
// of this process is released as by Lock.Unlock. A lock of a live process,
// of another host, or with an unparsable record gives an error matching
// ErrLocked and is left alone; a free lock gives one matching ErrNotLocked,
// a path that cannot be a lock one matching ErrInvalidPath.
func Unlock(path string) error {
	path, err := NormalizePath(path)
	if err != nil {
		return err
	}
	if l := heldLocks.get(path); l != nil {
		return l.Unlock()
	}
	h, id, err := readLockFile(path)
	if err != nil {
		return err
	}
	mine := h.State == HolderDead || h.State == HolderAlive && h.Record.Pid == os.Getpid()
	if !mine {
		return fmt.Errorf("%w; not ours to unlock", h.heldError(path, id))
	}
	removed, err := removeIfUnchanged(path, id, h.Raw, "unlocking")
	if err != nil {
		return err
	}
	if !removed {
		return fmt.Errorf("nfslock: %s: the lock changed hands while being unlocked; left alone: %w", path, ErrLocked)
	}
	return nil
}

// MustUnlock is Unlock, panicking on failure (Core's unlock_exn).
func MustUnlock(path string) {
	if err := Unlock(path); err != nil {
		panic(err)
	}
}

// UnlockAll releases the locks this process holds for itself, whichever API
// took them, and returns the errors joined. Programs call it on every exit
// path, as Core does at exit. A lock whose record names another process
// (WithOwner, SetOwner) that still runs is left held: that process still
// believes it holds the lock, which becomes stale when it exits. Locks
// naming a process that has exited are released.
func UnlockAll() error {
	errs := unlockAllShared()
	for _, l := range heldLocks.all() {
		if rec := l.Record(); rec.Pid != os.Getpid() && alive(rec) {
			continue
		}
		if err := l.Unlock(); err != nil && !errors.Is(err, ErrNotLocked) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Break removes the lock on path whatever holds it, a live process or
// another host included, and returns the holder it removed. It is the
// operator's override for a lock whose host died or whose record is
// corrupt. It removes only the lock it read: if the lock changes hands
// meanwhile, it fails with an error matching ErrLocked. A P.nfs_lock that is
// not a regular file (a symbolic link) is removed as it is. A free lock
// gives an error matching ErrNotLocked, a path that cannot be a lock one
// matching ErrInvalidPath.
func Break(path string) (Holder, error) {
	path, err := NormalizePath(path)
	if err != nil {
		return Holder{}, err
	}
	h, id, err := readLockFile(path)
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EINVAL) {
		// Not a regular file: no record to compare, nothing a holder wrote.
		fi, lerr := os.Lstat(lockFile(path))
		if lerr != nil || fi.IsDir() {
			return Holder{}, err
		}
		if rerr := os.Remove(lockFile(path)); rerr != nil {
			return Holder{}, fmt.Errorf("nfslock: %s: breaking: %w", path, rerr)
		}
		return Holder{State: HolderCorrupt, Since: fi.ModTime(), File: fi}, nil
	}
	if err != nil {
		return Holder{}, err
	}
	removed, err := removeIfUnchanged(path, id, h.Raw, "breaking the lock")
	if err != nil {
		return h, err
	}
	if !removed {
		return h, fmt.Errorf("nfslock: %s: the lock changed hands while being broken; left alone: %w", path, ErrLocked)
	}
	if l := heldLocks.get(path); l != nil {
		// This process broke its own lock: it no longer holds it.
		l.mu.Lock()
		l.forget()
		l.mu.Unlock()
	}
	return h, nil
}
