//go:build linux

package nfslock

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestCoreCreateAndUnlock(t *testing.T) {
	p := lockIn(t)
	if err := Create(p, WithMessage("core")); err != nil {
		t.Fatal(err)
	}
	if err := Create(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Create: %v, want ErrLocked", err)
	}
	host, pid, ok := GetHostnameAndPid(p)
	if !ok || host != mustHostname(t) || pid != os.Getpid() {
		t.Errorf("GetHostnameAndPid = %q, %d, %v", host, pid, ok)
	}
	if msg, ok := GetMessage(p); !ok || msg != "core" {
		t.Errorf("GetMessage = %q, %v", msg, ok)
	}
	MustUnlock(p)
	if _, _, ok := GetHostnameAndPid(p); ok {
		t.Error("GetHostnameAndPid of a free lock: ok")
	}
	if _, ok := GetMessage(p); ok {
		t.Error("GetMessage of a free lock: ok")
	}
	if err := Unlock(p); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Unlock of a free lock: %v, want ErrNotLocked", err)
	}
}

func TestMustCreatePanicsWhenHeld(t *testing.T) {
	p := lockIn(t)
	MustCreate(p)
	defer MustUnlock(p)
	defer func() {
		if r := recover(); r == nil {
			t.Error("MustCreate of a held lock did not panic")
		}
	}()
	MustCreate(p)
}

func TestUnlockRules(t *testing.T) {
	host := mustHostname(t)
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	live, err := recordFor(sleeper.Process.Pid, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		rec   Record
		freed bool
	}{
		{"our pid", Record{Host: host, Pid: os.Getpid()}, true},
		{"dead pid", Record{Host: host, Pid: deadPid(t)}, true},
		{"live process", live, false},
		{"other host", Record{Host: "elsewhere.example", Pid: os.Getpid()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := lockIn(t)
			plant(t, p, tc.rec)
			err := Unlock(p)
			if tc.freed != (err == nil) {
				t.Fatalf("Unlock: %v, want freed=%v", err, tc.freed)
			}
			if !tc.freed && !errors.Is(err, ErrLocked) {
				t.Errorf("Unlock: %v, want ErrLocked", err)
			}
			if _, err := os.Stat(lockFile(p)); tc.freed == (err == nil) {
				t.Errorf("lock file exists=%v after Unlock, want %v", err == nil, !tc.freed)
			}
		})
	}
}

func TestBlockingCreateTimeout(t *testing.T) {
	p := lockIn(t)
	plant(t, p, Record{Host: "elsewhere.example", Pid: 1})
	start := time.Now()
	err := BlockingCreate(p, 30*time.Millisecond)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("BlockingCreate: %v, want ErrLocked after the timeout", err)
	}
	if waited := time.Since(start); waited < 30*time.Millisecond {
		t.Errorf("returned after %v, before the timeout", waited)
	}
	os.Remove(lockFile(p))
	if err := BlockingCreate(p, 0); err != nil {
		t.Fatal(err)
	}
	MustUnlock(p)
}

func TestCriticalSection(t *testing.T) {
	p := lockIn(t)
	boom := errors.New("boom")
	err := CriticalSection(p, time.Second, func() error {
		if _, err := ReadRecord(p); err != nil {
			t.Errorf("inside the critical section: %v", err)
		}
		return boom
	}, WithMessage("cs"))
	if !errors.Is(err, boom) {
		t.Errorf("CriticalSection: %v, want f's error", err)
	}
	if _, err := ReadRecord(p); !errors.Is(err, ErrNotLocked) {
		t.Errorf("after the critical section: %v, want free", err)
	}
	func() {
		defer func() { recover() }()
		CriticalSection(p, time.Second, func() error { panic("f panics") })
	}()
	if _, err := ReadRecord(p); !errors.Is(err, ErrNotLocked) {
		t.Errorf("after a panicking critical section: %v, want free", err)
	}
}

func TestUnlockAll(t *testing.T) {
	a, b := lockIn(t), lockIn(t)
	MustCreate(a)
	if _, err := TryLock(b); err != nil {
		t.Fatal(err)
	}
	if err := UnlockAll(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{a, b} {
		if _, err := ReadRecord(p); !errors.Is(err, ErrNotLocked) {
			t.Errorf("%s after UnlockAll: %v", p, err)
		}
	}
}

func TestSetMessageAndOwner(t *testing.T) {
	p := lockIn(t)
	l, err := TryLock(p, WithMessage("before"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	acquired := time.Now().Add(-time.Hour).Truncate(time.Second)
	os.Chtimes(lockFile(p), time.Time{}, acquired) // as if taken an hour ago
	before, _ := os.Lstat(lockFile(p))
	if err := l.SetMessage("after\nwith a newline"); err != nil {
		t.Fatal(err)
	}
	if rec, err := ReadRecord(p); err != nil || rec.Message != "after\nwith a newline" || l.Record().Message != rec.Message {
		t.Errorf("after SetMessage: %+v, %v", rec, err)
	}
	after, _ := os.Lstat(lockFile(p))
	if os.SameFile(before, after) {
		t.Error("SetMessage rewrote P.nfs_lock in place; want a new file renamed over it")
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("SetMessage changed the lock's mtime from %v to %v; it says when the lock was taken", before.ModTime(), after.ModTime())
	}
	if data, _ := os.ReadFile(p); !strings.Contains(string(data), `after\nwith a newline`) {
		t.Errorf("P holds %q, want the new record", data)
	}

	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	if err := l.SetOwner(sleeper.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if rec, _ := ReadRecord(p); rec.Pid != sleeper.Process.Pid || rec.Message != "after\nwith a newline" {
		t.Errorf("after SetOwner the record is %+v", rec)
	}
	sleeper.Process.Kill()
	sleeper.Wait()
	// The named owner is dead: the lock is stale for everyone, and
	// releasing it is still ours to do.
	if h, _ := Inspect(p); h.State != HolderDead {
		t.Errorf("holder state after the owner died: %v, want dead", h.State)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestUnlockAfterAnotherBreakRemovesNothing(t *testing.T) {
	p := lockIn(t)
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(lockFile(p)) // an operator's break, in another process
	plant(t, p, Record{Host: "elsewhere.example", Pid: 9, Message: "new holder"})
	if err := l.Unlock(); !errors.Is(err, ErrLocked) {
		t.Fatalf("Unlock of a lock someone else now holds: %v, want ErrLocked", err)
	}
	if rec, err := ReadRecord(p); err != nil || rec.Message != "new holder" {
		t.Errorf("the new holder's lock: %+v, %v", rec, err)
	}
}

func TestUnlockAfterBreakRemovesNothing(t *testing.T) {
	p := lockIn(t)
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Break(p); err != nil {
		t.Fatal(err)
	}
	plant(t, p, Record{Host: "elsewhere.example", Pid: 9, Message: "new holder"})
	if err := l.Unlock(); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("Unlock of a lock this process broke: %v, want ErrNotLocked", err)
	}
	if rec, err := ReadRecord(p); err != nil || rec.Message != "new holder" {
		t.Errorf("the new holder's lock: %+v, %v", rec, err)
	}
}

func TestWithOwnerNeedsALiveProcess(t *testing.T) {
	p := lockIn(t)
	if _, err := TryLock(p, WithOwner(deadPid(t))); err == nil {
		t.Fatal("TryLock for a dead owner succeeded")
	}
	if _, err := os.Stat(lockFile(p)); err == nil {
		t.Error("a lock was left for a dead owner")
	}
}

func TestHugeMessageRefused(t *testing.T) {
	p := lockIn(t)
	_, err := TryLock(p, WithMessage(strings.Repeat("\x01", MaxRecordSize/4+1)))
	if err == nil || !strings.Contains(err.Error(), "shorten the message") {
		t.Fatalf("TryLock with a huge message: %v, want a refusal", err)
	}
	if _, err := os.Lstat(lockFile(p)); err == nil {
		t.Error("a lock was taken with an unreadable record")
	}
}

func TestUnlockAllKeepsLocksOfLiveOwners(t *testing.T) {
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	p := lockIn(t)
	l, err := TryLock(p, WithOwner(sleeper.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if err := UnlockAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(p); err != nil {
		t.Fatalf("the lock of a live owner was released: %v", err)
	}
	sleeper.Process.Kill()
	sleeper.Wait()
	if err := UnlockAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(p); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("the lock of a dead owner was kept: %v", err)
	}
	if err := l.Unlock(); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Unlock after UnlockAll: %v", err)
	}
}

// Every error that finds the lock held describes the holder as Inspect
// does, and names the path once.
func TestHeldErrorsDescribeHolderAsInspect(t *testing.T) {
	remote := Record{Host: "elsewhere.example", Pid: 9, Message: "new holder"}
	for name, tc := range map[string]struct {
		setup func(t *testing.T, p string) error // returns the error to check
		state HolderState
	}{
		"TryLock": {func(t *testing.T, p string) error {
			plant(t, p, remote)
			_, err := TryLock(p)
			return err
		}, HolderRemote},
		"TryLock of a corrupt record": {func(t *testing.T, p string) error {
			os.WriteFile(lockFile(p), []byte("((host n"), 0o644)
			_, err := TryLock(p)
			return err
		}, HolderCorrupt},
		"Unlock of another host's lock": {func(t *testing.T, p string) error {
			plant(t, p, remote)
			return Unlock(p)
		}, HolderRemote},
		"Lock.Unlock after another break": {func(t *testing.T, p string) error {
			l, err := TryLock(p)
			if err != nil {
				t.Fatal(err)
			}
			os.Remove(lockFile(p))
			plant(t, p, remote)
			return l.Unlock()
		}, HolderRemote},
	} {
		t.Run(name, func(t *testing.T) {
			p := lockIn(t)
			err := tc.setup(t, p)
			var held *HeldError
			if !errors.Is(err, ErrLocked) || !errors.As(err, &held) {
				t.Fatalf("%v, want a HeldError", err)
			}
			want, ierr := Inspect(p)
			if ierr != nil {
				t.Fatal(ierr)
			}
			got := held.Holder
			if got.Record != want.Record || string(got.Raw) != string(want.Raw) || !got.Since.Equal(want.Since) ||
				got.State != tc.state || want.State != tc.state || got.File == nil {
				t.Errorf("HeldError.Holder = %+v, Inspect = %+v, want the same in state %v", got, want, tc.state)
			}
			if n := strings.Count(err.Error(), p); n != 1 {
				t.Errorf("error %q names the path %d times, want once", err, n)
			}
		})
	}
}
