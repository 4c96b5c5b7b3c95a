//go:build linux

package nfslock

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// lockIn returns a lock path in a fresh directory.
func lockIn(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "lock")
}

// plant writes a holder record for p as another process would have.
func plant(t *testing.T, p string, rec Record) {
	t.Helper()
	if err := os.WriteFile(lockFile(p), rec.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// deadPid returns the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func mustHostname(t *testing.T) string {
	t.Helper()
	h, err := hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestTryLockUnlock(t *testing.T) {
	p := lockIn(t)
	l, err := TryLock(p, WithMessage("first"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ReadRecord(p)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Pid != os.Getpid() || rec.Host != mustHostname(t) || rec.Message != "first" || rec.StartTime.IsZero() {
		t.Errorf("record = %+v, want this process with message first", rec)
	}
	// P is a second name of the record, as Core v1 writes it.
	if data, err := os.ReadFile(p); err != nil || !bytes.Equal(data, rec.Encode()) {
		t.Errorf("P holds %q, %v; want the record", data, err)
	}
	if got := testutil.Names(t, filepath.Dir(p)); len(got) != 3 {
		t.Errorf("while held the directory holds %q, want P, P.nfs_lock and the exclusive mark P.nfs_readers only", got)
	}

	_, err = TryLock(p)
	var held *HeldError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &held) || held.Holder.Record.Pid != os.Getpid() {
		t.Fatalf("second TryLock: %v, want ErrLocked naming us", err)
	}
	if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "first") {
		t.Errorf("error %q does not name the path and the message", err)
	}

	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if got := testutil.Names(t, filepath.Dir(p)); len(got) != 0 {
		t.Errorf("after Unlock the directory holds %q, want nothing", got)
	}
	if err := l.Unlock(); !errors.Is(err, ErrNotLocked) {
		t.Errorf("second Unlock: %v, want ErrNotLocked", err)
	}
	if _, err := ReadRecord(p); !errors.Is(err, ErrNotLocked) {
		t.Errorf("ReadRecord of a free lock: %v, want ErrNotLocked", err)
	}
}

func TestStaleLocks(t *testing.T) {
	host := mustHostname(t)
	self, err := processStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		rec     Record
		cleaned bool
	}{
		{"dead pid", Record{Host: host, Pid: deadPid(t), Message: "gone"}, true},
		{"reused pid", Record{Host: host, Pid: os.Getpid(), StartTime: self.Add(-time.Hour)}, true},
		{"pid 1 alive or EPERM", Record{Host: host, Pid: 1}, false},
		{"live process", Record{Host: host, Pid: os.Getpid(), StartTime: self}, false},
		{"other host", Record{Host: "elsewhere.example", Pid: deadPid(t)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := lockIn(t)
			plant(t, p, tc.rec)
			var cleaned []Holder
			l, err := TryLock(p, WithStaleCleanup(func(h Holder) { cleaned = append(cleaned, h) }))
			if tc.cleaned {
				if err != nil {
					t.Fatalf("TryLock over a stale lock: %v", err)
				}
				l.Unlock()
				if len(cleaned) != 1 || cleaned[0].Record.Pid != tc.rec.Pid {
					t.Fatalf("WithStaleCleanup was told of %+v, want the one stale holder pid %d", cleaned, tc.rec.Pid)
				}
				return
			}
			if len(cleaned) != 0 {
				t.Fatalf("WithStaleCleanup was told of %+v for a lock that is not stale", cleaned)
			}
			var held *HeldError
			if !errors.As(err, &held) || held.Holder.Record.Host != tc.rec.Host || held.Holder.Record.Pid != tc.rec.Pid {
				t.Fatalf("TryLock: %v, want held by %+v", err, tc.rec)
			}
		})
	}
}

func TestCorruptRecordIsHeld(t *testing.T) {
	p := lockIn(t)
	if err := os.WriteFile(lockFile(p), []byte("((host n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := TryLock(p)
	if !errors.Is(err, ErrLocked) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("TryLock on a corrupt record: %v, want ErrLocked and ErrCorrupt", err)
	}
	if _, err := ReadRecord(p); !errors.Is(err, ErrCorrupt) {
		t.Errorf("ReadRecord: %v, want ErrCorrupt", err)
	}
	h, err := Inspect(p)
	if err != nil || h.State != HolderCorrupt || string(h.Raw) != "((host n" {
		t.Errorf("Inspect = %+v, %v; want corrupt with the raw bytes", h, err)
	}
}

func TestAcquireWaitsForRelease(t *testing.T) {
	p := lockIn(t)
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Lock)
	go func() {
		l2, err := Acquire(context.Background(), p)
		if err != nil {
			t.Error(err)
		}
		got <- l2
	}()
	time.Sleep(20 * time.Millisecond)
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case l2 := <-got:
		l2.Unlock()
	case <-time.After(10 * time.Second):
		t.Fatal("waiter not woken by the release")
	}
}

func TestAcquireTimeoutNamesHolder(t *testing.T) {
	p := lockIn(t)
	plant(t, p, Record{Host: "elsewhere.example", Pid: 7, Message: "nightly"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := Acquire(ctx, p)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "nightly") {
		t.Fatalf("Acquire: %v, want a deadline error naming the holder", err)
	}
}

// A wait that times out on a lock this process holds, or while queued
// behind another waiter of this process, never polls the filesystem; it
// still says who holds the lock, through every blocking API.
func TestTimeoutInProcessNamesHolder(t *testing.T) {
	timeout := 30 * time.Millisecond
	blocking := map[string]func(p string) error{
		"Acquire": func(p string) error {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			_, err := Acquire(ctx, p)
			return err
		},
		"BlockingCreate": func(p string) error { return BlockingCreate(p, timeout) },
		"CriticalSection": func(p string) error {
			return CriticalSection(p, timeout, func() error { t.Error("f ran without the lock"); return nil })
		},
	}
	for name, wait := range blocking {
		t.Run(name+"/held by this process", func(t *testing.T) {
			p := lockIn(t)
			l, err := TryLock(p, WithMessage("ours"))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Unlock()
			checkTimedOutOn(t, p, wait(p), os.Getpid(), "ours")
		})
		t.Run(name+"/queued behind a waiter", func(t *testing.T) {
			p := lockIn(t)
			plant(t, p, Record{Host: "elsewhere.example", Pid: 7, Message: "theirs"})
			ctx, cancel := context.WithCancel(context.Background())
			head := make(chan error, 1)
			go func() {
				_, err := Acquire(ctx, p)
				head <- err
			}()
			defer func() { cancel(); <-head }()
			for deadline := time.Now().Add(10 * time.Second); waiters.lastSeen(p) == nil; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the first waiter never found the lock held")
				}
			}
			checkTimedOutOn(t, p, wait(p), 7, "theirs")
		})
	}
}

// checkTimedOutOn checks that err reports a wait for p that timed out on
// the holder pid with message msg, naming the path once.
func checkTimedOutOn(t *testing.T, p string, err error, pid int, msg string) {
	t.Helper()
	var held *HeldError
	if !errors.Is(err, ErrLocked) || !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &held) {
		t.Fatalf("timed out: %v, want ErrLocked and context.DeadlineExceeded", err)
	}
	if held.Holder.Record.Pid != pid || held.Holder.Record.Message != msg {
		t.Errorf("timed out on holder %+v, want pid %d with message %q", held.Holder.Record, pid, msg)
	}
	if n := strings.Count(err.Error(), p); n != 1 {
		t.Errorf("error %q names the path %d times, want once", err, n)
	}
}

// permanentCase is a lock path whose acquisition must fail at once with errno.
type permanentCase struct {
	path  string
	errno syscall.Errno
}

func TestPermanentErrorsReturnAtOnce(t *testing.T) {
	cases := map[string]permanentCase{
		"missing directory": {filepath.Join(t.TempDir(), "no", "such", "lock"), syscall.ENOENT},
		"not a directory":   {filepath.Join(lockIn(t)+"-file", "lock"), syscall.ENOTDIR},
		"name too long":     {filepath.Join(t.TempDir(), strings.Repeat("x", MaxNameLen+1)), syscall.ENAMETOOLONG},
	}
	os.WriteFile(filepath.Dir(cases["not a directory"].path), nil, 0o644)
	if os.Geteuid() == 0 {
		// Root ignores modes, so a read-only and a full filesystem stand in.
		cases["read-only filesystem"] = permanentCase{filepath.Join(tmpfs(t, "ro"), "lock"), syscall.EROFS}
		cases["no space"] = permanentCase{filepath.Join(fullTmpfs(t), "lock"), syscall.ENOSPC}
	} else {
		ro := t.TempDir()
		os.Chmod(ro, 0o555)
		cases["read-only directory"] = permanentCase{filepath.Join(ro, "lock"), syscall.EACCES}
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			// A permanent error treated as transient would make Acquire
			// wait until this deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := Acquire(ctx, tc.path)
			if !errors.Is(err, tc.errno) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Acquire: %v, want %v at once", err, tc.errno)
			}
			if !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %q does not name the path", err)
			}
		})
	}
}

// tmpfs mounts a small tmpfs with the given options on a temporary directory.
func tmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := t.TempDir()
	flags := uintptr(0)
	if opts == "ro" {
		flags, opts = syscall.MS_RDONLY, ""
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, opts); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fullTmpfs returns a directory on a tmpfs with no room for another file.
func fullTmpfs(t *testing.T) string {
	t.Helper()
	dir := tmpfs(t, "size=4k,nr_inodes=2")
	os.WriteFile(filepath.Join(dir, "filler"), make([]byte, 4096), 0o644)
	return dir
}

func TestBadLockFiles(t *testing.T) {
	huge := append(Record{Host: "h", Pid: 1}.Encode(), bytes.Repeat([]byte(" "), MaxRecordSize)...)
	for name, plantBad := range map[string]func(lock string) error{
		"symlink": func(lock string) error { return os.Symlink("/etc/passwd", lock) },
		"fifo":    func(lock string) error { return syscall.Mkfifo(lock, 0o644) },
		"huge":    func(lock string) error { return os.WriteFile(lock, huge, 0o644) },
		"empty":   func(lock string) error { return os.WriteFile(lock, nil, 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			p := lockIn(t)
			if err := plantBad(lockFile(p)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err := Acquire(ctx, p)
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Fatalf("Acquire: %v, want an error naming %s", err, p)
			}
			if _, err := os.Lstat(lockFile(p)); err != nil {
				t.Errorf("the bad lock file was removed: %v", err)
			}
			// The operator's override removes it whatever it is.
			if _, err := Break(p); err != nil {
				t.Fatalf("Break: %v", err)
			}
			l, err := TryLock(p)
			if err != nil {
				t.Fatalf("TryLock after Break: %v", err)
			}
			l.Unlock()
		})
	}
}

func TestLockingNeverDestroysP(t *testing.T) {
	for name, setup := range map[string]func(p string) error{
		"data file": func(p string) error { return os.WriteFile(p, []byte("precious,data\n"), 0o644) },
		"directory": func(p string) error { return os.Mkdir(p, 0o755) },
		"symlink":   func(p string) error { return os.Symlink("/etc/hostname", p) },
	} {
		t.Run(name, func(t *testing.T) {
			p := lockIn(t)
			if err := setup(p); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Lstat(p)
			l, err := TryLock(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.SetMessage("changed"); err != nil {
				t.Fatal(err)
			}
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
			after, err := os.Lstat(p)
			if err != nil || !os.SameFile(before, after) || after.Size() != before.Size() {
				t.Fatalf("P after a lock cycle: %v, %v; want it untouched", after, err)
			}
		})
	}
}

func TestLeftoverRecordAtPIsReplaced(t *testing.T) {
	p := lockIn(t)
	old := Record{Host: "elsewhere.example", Pid: 3, Message: "old"}.Encode()
	if err := os.WriteFile(p, old, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := TryLock(p, WithMessage("new"))
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); !bytes.Equal(data, l.Record().Encode()) {
		t.Errorf("P holds %q, want our record", data)
	}
	l.Unlock()
	if _, err := os.Lstat(p); err == nil {
		t.Error("P survived the release")
	}
}

// A zombie holds its lock until its parent reaps it (the parent may still
// act for it); one that init adopted and does not reap holds nothing.
func TestZombieHolder(t *testing.T) {
	child := exec.Command("true")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	rec, err := recordFor(child.Process.Pid, "")
	if err != nil {
		t.Fatal(err)
	}
	// Not waited for yet: a zombie of this process.
	deadline := time.Now().Add(5 * time.Second)
	for st, _ := readProcStat(rec.Pid); st.state != 'Z' && time.Now().Before(deadline); st, _ = readProcStat(rec.Pid) {
		time.Sleep(time.Millisecond)
	}
	if !alive(rec) {
		t.Error("a zombie whose parent has not reaped it counts as dead")
	}
	child.Wait()
	if alive(rec) {
		t.Error("a reaped holder counts as alive")
	}
	for _, tc := range []struct {
		st   procStat
		want bool
	}{
		{procStat{state: 'S', parent: 1}, true},
		{procStat{state: 'Z', parent: 4242}, true},
		{procStat{state: 'Z', parent: 1}, false}, // adopted by an init that does not reap
		{procStat{state: 'Z', parent: 0}, false},
		{procStat{state: 'X', parent: 4242}, false},
	} {
		if got := tc.st.canHold(); got != tc.want {
			t.Errorf("%+v: canHold() = %v, want %v", tc.st, got, tc.want)
		}
	}
}

// Waiters of one process for one lock are served in the order they came,
// each woken by the release before it.
func TestAcquireServesWaitersInOrder(t *testing.T) {
	p := lockIn(t)
	holder, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	order := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			l, err := Acquire(ctx, p)
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			l.Unlock()
		})
		for deadline := time.Now().Add(10 * time.Second); waiting(p) != i+1; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("waiter %d never queued", i)
			}
		}
	}
	holder.Unlock()
	wg.Wait()
	close(order)
	next := 0
	for i := range order {
		if i != next {
			t.Fatalf("waiter %d got the lock in turn %d", i, next)
		}
		next++
	}
}

// A held lock describes itself from memory as Inspect reads it from disk.
func TestHolderOfHeldLockIsInspects(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	l, err := TryLock(p, WithMessage("from memory"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	mem := l.Holder()
	disk, err := Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	if mem.Record != disk.Record || !bytes.Equal(mem.Raw, disk.Raw) || !mem.Since.Equal(disk.Since) || mem.State != disk.State {
		t.Errorf("Holder: %+v\nInspect: %+v", mem, disk)
	}
	if ms, ds := mem.File.Sys().(*syscall.Stat_t), disk.File.Sys().(*syscall.Stat_t); ms.Ino != ds.Ino || ms.Mode != ds.Mode || ms.Uid != ds.Uid || ms.Size != ds.Size {
		t.Errorf("Holder's file: %+v\nInspect's: %+v", ms, ds)
	}
}
