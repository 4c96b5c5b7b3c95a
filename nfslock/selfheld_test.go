//go:build linux

package nfslock

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// A lock that another process took in this process's name (the CLI for
// its COMMAND, the mount for its opener) can only be released when this
// process ends: waiting for it would never end, so it is an error at once.
func TestLockHeldInOwnNameIsADeadlock(t *testing.T) {
	p := lockIn(t)
	rec, err := recordFor(os.Getpid(), "taken for us by our parent")
	if err != nil {
		t.Fatal(err)
	}
	plant(t, p, rec)
	if _, err := TryLock(p); !errors.Is(err, syscall.EDEADLK) || !errors.Is(err, ErrLocked) {
		t.Errorf("TryLock: %v; want an error matching EDEADLK and ErrLocked", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := Acquire(ctx, p); !errors.Is(err, syscall.EDEADLK) || ctx.Err() != nil {
		t.Errorf("Acquire after %v: %v; want an error matching EDEADLK at once", time.Since(start), err)
	}
	if got, err := ReadRecord(p); err != nil || got != rec {
		t.Errorf("the lock after the attempts: %+v, %v; want it left as it was", got, err)
	}
}
