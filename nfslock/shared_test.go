//go:build linux

package nfslock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestSharedHoldersExcludeWriters(t *testing.T) {
	p := lockIn(t)
	r1, err := TryLockShared(p, WithMessage("reader one"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := TryLockShared(p, WithMessage("reader two"))
	if err != nil {
		t.Fatalf("a second shared holder: %v", err)
	}
	if _, err := os.Lstat(lockFile(p)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("P.nfs_lock while only shared holders hold: %v, want none (the gate is let go)", err)
	}
	if readers, err := Readers(p); err != nil || len(readers) != 2 {
		t.Errorf("Readers: %d, %v; want 2", len(readers), err)
	}
	if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock with shared holders: %v, want ErrLocked", err)
	}
	if _, err := os.Lstat(lockFile(p)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused TryLock left P.nfs_lock: %v", err)
	}
	r1.Unlock()
	if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock with one shared holder left: %v, want ErrLocked", err)
	}
	if err := r2.Unlock(); err != nil {
		t.Fatal(err)
	}
	l, err := TryLock(p)
	if err != nil {
		t.Fatalf("TryLock once the shared holders are gone: %v", err)
	}
	if _, err := TryLockShared(p); !errors.Is(err, ErrLocked) {
		t.Errorf("TryLockShared while held exclusively: %v, want ErrLocked", err)
	}
	l.Unlock()
	if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) != 0 {
		t.Errorf("files left: %v", entries)
	}
}

// A waiting writer keeps new shared holders out, and gets the lock when
// the last shared holder leaves.
func TestWaitingWriterBlocksNewReaders(t *testing.T) {
	p := lockIn(t)
	r, err := TryLockShared(p)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l, err := Acquire(ctx, p)
		if err == nil {
			err = l.Unlock()
		}
		got <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Lstat(lockFile(p)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer did not take P.nfs_lock to wait for the shared holder")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := TryLockShared(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("a new shared holder while a writer waits: %v, want ErrLocked", err)
	}
	select {
	case err := <-got:
		t.Fatalf("the writer got the lock (%v) while a shared holder holds it", err)
	case <-time.After(100 * time.Millisecond):
	}
	r.Unlock()
	if err := <-got; err != nil {
		t.Fatalf("the writer, after the shared holder left: %v", err)
	}
}

// sharedByChild starts a child process and takes a shared lock on p in
// its name; the caller kills it.
func sharedByChild(t *testing.T, p string) *exec.Cmd {
	t.Helper()
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	if _, err := TryLockShared(p, WithOwner(child.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	return child
}

// The reader file of a process of this host that died is cleaned up as a
// stale lock is; a writer whose wait ends holds nothing.
func TestStaleReaderIsCleanedUp(t *testing.T) {
	p := lockIn(t)
	child := sharedByChild(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, p); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrLocked) {
		t.Fatalf("Acquire while a live process holds it shared: %v, want a deadline naming the holder", err)
	}
	if _, err := os.Lstat(lockFile(p)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a writer that gave up left P.nfs_lock: %v", err)
	}
	child.Process.Kill()
	child.Wait()
	l, err := TryLock(p)
	if err != nil {
		t.Fatalf("TryLock once the shared holder died: %v", err)
	}
	l.Unlock()
	if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) != 0 {
		t.Errorf("files left: %v", entries)
	}
}

// A writer of another host that waits for shared holders keeps
// P.nfs_lock, so the processes of this host, the only ones that can judge
// a dead reader of this host stale, wait for P.nfs_lock and not for
// readers. A waiter behind another host's holder cleans up dead readers of
// its own host, or the lock is never free again (found by the cluster's
// readers-and-writers chaos).
func TestWaiterCleansDeadReadersForRemoteWriter(t *testing.T) {
	p := lockIn(t)
	child := sharedByChild(t, p)
	child.Process.Kill()
	child.Wait()
	plant(t, p, Record{Host: "other-host", Pid: 1, Message: "a writer waiting for shared holders"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		l, err := Acquire(ctx, p)
		if err == nil {
			err = l.Unlock()
		}
		got <- err
	}()
	readerLeft := func() bool {
		entries, err := os.ReadDir(readersDir(p))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, e := range entries {
			if isReaderFile(e.Name()) {
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(3 * time.Second); readerLeft(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a dead reader of this host outlived 3 s of a local waiter behind another host's writer")
		}
	}
	if err := os.Remove(lockFile(p)); err != nil { // the other host's writer is done
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Acquire once the other host's writer left: %v", err)
	}
}

func TestReaderFilesAreHelperFiles(t *testing.T) {
	for _, name := range []string{filepath.Base(readerFile("/d/lock")), filepath.Base(readersDir("/d/lock"))} {
		if !IsHelperFile(name) {
			t.Errorf("IsHelperFile(%q) = false", name)
		}
		if _, err := TryLock(filepath.Join(t.TempDir(), name)); err == nil {
			t.Errorf("%s was accepted as a lock name", name)
		}
	}
}

func TestSharedSetOwnerAndUnlockAll(t *testing.T) {
	p := lockIn(t)
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	s, err := TryLockShared(p, WithMessage("job"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetOwner(child.Process.Pid); err != nil {
		t.Fatal(err)
	}
	readers, err := Readers(p)
	if err != nil || len(readers) != 1 || readers[0].Record.Pid != child.Process.Pid || readers[0].Record.Message != "job" {
		t.Fatalf("Readers after SetOwner: %+v, %v; want one naming pid %d", readers, err, child.Process.Pid)
	}
	if err := UnlockAll(); err != nil {
		t.Fatal(err)
	}
	if err := s.Err(); err != nil {
		t.Fatalf("UnlockAll released a shared lock naming a live process: %v", err)
	}
	if err := s.SetOwner(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if err := UnlockAll(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(s.Err(), ErrNotLocked) {
		t.Fatal("UnlockAll left this process's shared lock held")
	}
	if readers, err := Readers(p); err != nil || len(readers) != 0 {
		t.Errorf("Readers after UnlockAll: %d, %v", len(readers), err)
	}
}

func TestBreakShared(t *testing.T) {
	p := lockIn(t)
	if _, err := BreakShared(p); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("BreakShared of a free lock: %v, want ErrNotLocked", err)
	}
	r1, err := TryLockShared(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLockShared(p); err != nil {
		t.Fatal(err)
	}
	removed, err := BreakShared(p)
	if err != nil || len(removed) != 2 {
		t.Fatalf("BreakShared: %d removed, %v; want 2", len(removed), err)
	}
	l, err := TryLock(p)
	if err != nil {
		t.Fatalf("TryLock after the shared holders were broken: %v", err)
	}
	l.Unlock()
	if err := r1.Unlock(); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Unlock of a broken shared lock: %v, want ErrNotLocked", err)
	}
}

// An exclusive holder marks the lock by renaming its attempt file to
// P.nfs_readers, which the server refuses while shared holders have their
// directory there; what a dead holder leaves there is cleaned up by the
// next holder of either kind.
func TestExclusiveMarkAndLeftovers(t *testing.T) {
	p := lockIn(t)
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(readersDir(p)); err != nil || !fi.Mode().IsRegular() || !l.marked {
		t.Fatalf("P.nfs_readers while held exclusively: %v, %v (marked %v); want the mark, a file", fi, err, l.marked)
	}
	l.Unlock()

	// A mark left by a holder that died: a reader replaces it with its directory.
	if err := os.WriteFile(readersDir(p), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := TryLockShared(p)
	if err != nil {
		t.Fatalf("TryLockShared over a leftover mark: %v", err)
	}
	if fi, err := os.Lstat(s.name); err != nil || filepath.Dir(s.name) != readersDir(p) {
		t.Fatalf("reader file %s: %v, %v; want it in %s", s.name, fi, err, readersDir(p))
	}
	if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock with a shared holder: %v, want ErrLocked", err)
	}
	s.Unlock()
	if _, err := os.Lstat(readersDir(p)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the last shared holder left its directory: %v", err)
	}

	// An empty directory left by a reader that died: the next writer,
	// refused its mark, finds no one, removes the directory and holds.
	if err := os.Mkdir(readersDir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err = TryLock(p)
	if err != nil {
		t.Fatalf("TryLock over an empty leftover directory: %v", err)
	}
	if l.marked {
		t.Error("marked over a directory")
	}
	l.Unlock()
	if entries, _ := os.ReadDir(filepath.Dir(p)); len(entries) != 0 {
		t.Errorf("files left: %v", entries)
	}
	if l, err = TryLock(p); err != nil || !l.marked {
		t.Fatalf("TryLock after the leftover was cleaned: %v (marked %v), want marked", err, l != nil && l.marked)
	}
	l.Unlock()
}

// A lock whose directory is missing has no readers to list: that is an
// error naming the directory, not "no shared holders".
func TestReadersOfMissingDirectory(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gone", "lock")
	if _, err := Readers(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Readers in a missing directory: %v, want an error matching ErrNotExist", err)
	}
}
