//go:build linux

package fusefs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// In a lease directory, cat shows the holder's token and lease; once the
// lease is lost (here: another host broke the lock and took it), the
// holding descriptor's write and read fail with ENOLCK, the log says so,
// and the release removes nothing of the new holder's.
func TestLeaseLossThroughTheMount(t *testing.T) {
	m := mount(t, FormatText)
	if err := os.WriteFile(filepath.Join(m.backing, nfslock.LeaseFile), []byte("2s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(m.path("lock"), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	shown, err := os.ReadFile(m.path("lock"))
	if err != nil || !strings.Contains(string(shown), "token: 1\n") || !strings.Contains(string(shown), "lease: 2s\n") {
		t.Errorf("cat of a lease: %q, %v; want token 1 and the lease", shown, err)
	}
	if _, err := f.Write([]byte("working\n")); err != nil {
		t.Fatalf("write while the lease holds: %v", err)
	}

	os.Remove(m.lockPath("lock") + nfslock.LockSuffix)
	other := nfslock.Record{Host: "elsewhere", Pid: 1, Message: "new holder"}
	if err := os.WriteFile(m.lockPath("lock")+nfslock.LockSuffix, other.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(m.log.String(), "lock lost") {
		if time.Now().After(deadline) {
			t.Fatal("the daemon's log does not say the lease was lost")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := f.Write([]byte("late\n")); !errors.Is(err, syscall.ENOLCK) {
		t.Errorf("write after the loss: %v, want ENOLCK", err)
	}
	if _, err := f.ReadAt(make([]byte, 100), 0); !errors.Is(err, syscall.ENOLCK) {
		t.Errorf("read after the loss: %v, want ENOLCK", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.ENOLCK) {
		t.Errorf("flock after the loss: %v, want ENOLCK", err)
	}
	f.Close()
	waitFor(t, "the release of a lost lease is logged", func() bool {
		return strings.Contains(m.log.String(), "lease was lost before its release")
	})
	if rec, err := nfslock.ReadRecord(m.lockPath("lock")); err != nil || rec != other {
		t.Errorf("the new holder's lock: %+v, %v", rec, err)
	}
}

// A lock taken by flock(2) in a lease directory: once its lease is lost, a
// further flock on the descriptor fails with ENOLCK.
func TestLeaseLossOfAFlock(t *testing.T) {
	m := mount(t, FormatText)
	if err := os.WriteFile(filepath.Join(m.backing, nfslock.LeaseFile), []byte("2s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(m.path("lock"), os.O_RDONLY|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatalf("flock: %v", err)
	}
	os.Remove(m.lockPath("lock") + nfslock.LockSuffix)
	if err := os.WriteFile(m.lockPath("lock")+nfslock.LockSuffix, nfslock.Record{Host: "elsewhere", Pid: 1}.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the daemon logs the loss", func() bool { return strings.Contains(m.log.String(), "lock lost") })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.ENOLCK) {
		t.Errorf("flock after the loss: %v, want ENOLCK", err)
	}
}
