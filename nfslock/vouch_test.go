//go:build linux

package nfslock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// exitedOwner starts a process, lets take hold a lock in its name, and
// kills and reaps it: the lock's record then names a dead process of this
// host, as when a FUSE opener exits while its forked child keeps the file.
func exitedOwner(t *testing.T, take func(pid int)) {
	t.Helper()
	owner := exec.Command("sleep", "60")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	take(owner.Process.Pid)
	owner.Process.Kill()
	owner.Wait()
}

// otherProcessTries has another process of this host call TryLock on p
// once and returns what it said ("locked", or "held PID HOST"); a lock it
// took it releases as it exits.
func otherProcessTries(t *testing.T, p string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gate, open := startGate(t)
	c := startChild(ctx, t, "trylock-once", []*os.File{gate}, p)
	c.expect(t, "ready")
	open.Close()
	line, err := c.readLine()
	if err != nil {
		t.Fatalf("%v\n%s", err, c.stderr.Bytes())
	}
	waitAll(t, c)
	return line
}

// TestVouchKeepsLockOfExitedOwner: a lock held in the name of a process
// that has exited is stale to the other processes of the host, and taken
// by the first that tries, unless the process holding it vouches for it
// (WithVouch): then it stays held, and its vouch ends with it. Exclusive
// and shared holds alike.
func TestVouchKeepsLockOfExitedOwner(t *testing.T) {
	host, err := hostname()
	if err != nil {
		t.Fatal(err)
	}
	for _, shared := range []bool{false, true} {
		for _, vouching := range []bool{false, true} {
			t.Run(fmt.Sprintf("shared=%v/vouch=%v", shared, vouching), func(t *testing.T) {
				p := lockIn(t)
				var unlock func() error
				var vouchFile func() string
				var owner int
				exitedOwner(t, func(pid int) {
					owner = pid
					opts := []Option{WithOwner(pid)}
					if vouching {
						opts = append(opts, WithVouch())
					}
					if shared {
						s, err := TryLockShared(p, opts...)
						if err != nil {
							t.Fatal(err)
						}
						unlock, vouchFile = s.Unlock, func() string { return vouchName(s.dev, s.ino) }
					} else {
						l, err := TryLock(p, opts...)
						if err != nil {
							t.Fatal(err)
						}
						unlock, vouchFile = l.Unlock, func() string { return vouchName(l.dev, l.ino) }
					}
				})
				got := otherProcessTries(t, p)
				want := "locked"
				if vouching {
					want = fmt.Sprintf("held %d %s", owner, host)
				}
				if got != want {
					t.Fatalf("another process of this host tried the lock of exited pid %d: %q, want %q", owner, got, want)
				}
				if !vouching {
					return
				}
				name := vouchFile()
				if _, err := os.Lstat(name); err != nil {
					t.Fatalf("the vouch while held: %v", err)
				}
				if err := unlock(); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Lstat(name); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the vouch after the release: %v, want it gone", err)
				}
			})
		}
	}
}

// TestVouchMovesWithTheRecord: SetOwner replaces the lock file, and the
// vouch follows it to the new file, so that the lock is vouched for at
// every instant; a vouch whose process died vouches for nothing.
func TestVouchMovesWithTheRecord(t *testing.T) {
	p := lockIn(t)
	var l *Lock
	exitedOwner(t, func(pid int) {
		var err error
		if l, err = TryLock(p, WithOwner(pid), WithVouch()); err != nil {
			t.Fatal(err)
		}
	})
	before := vouchName(l.dev, l.ino)
	if err := l.SetMessage("renamed record"); err != nil {
		t.Fatal(err)
	}
	after := vouchName(l.dev, l.ino)
	if _, err := os.Lstat(before); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old record's vouch after SetMessage: %v, want it gone", err)
	}
	if _, err := os.Lstat(after); err != nil {
		t.Errorf("the new record's vouch: %v", err)
	}
	h, err := Inspect(p)
	if err != nil || h.State != HolderAlive {
		t.Errorf("Inspect of the vouched lock: %v, %v; want alive", h.State, err)
	}
	// A vouch of a process that is gone: the lock is stale again.
	if err := os.Remove(after); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("1 0", after); err != nil { // pid 1 did not start at the epoch
		t.Fatal(err)
	}
	if h, err := Inspect(p); err != nil || h.State != HolderDead {
		t.Errorf("Inspect with a dead process's vouch: %v, %v; want dead", h.State, err)
	}
	l.Unlock()
}
