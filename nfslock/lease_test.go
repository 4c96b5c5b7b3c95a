//go:build linux

package nfslock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/faultfs"
	"github.com/nfslockfs/nfslockfs/internal/testenv"
	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// testLease is the lease of the test directories: long enough for a loaded
// machine running the race detector, short enough for tests of seconds.
const testLease = 2 * time.Second

// leaseDir returns a lock path in a fresh lease directory of duration d.
func leaseDir(t *testing.T, d time.Duration) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, LeaseFile), []byte("# set by the test\n"+d.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leaseConfigs.Delete(dir) })
	return filepath.Join(dir, "lock")
}

// skewClock makes the local clock run d away from the machine's, as a
// client whose clock is wrong: the readings carry no monotonic part, so any
// comparison of them with a file's time would be off by d.
func skewClock(t *testing.T, d time.Duration) {
	t.Helper()
	prev := localClock.Swap(skewedClock(d))
	t.Cleanup(func() { localClock.Store(prev) })
}

// skewedClock is a local clock d away from the machine's.
func skewedClock(d time.Duration) *func() time.Time {
	f := func() time.Time { return time.Unix(0, time.Now().Add(d).UnixNano()) }
	return &f
}

// plantExpired writes a lock of a holder on another host whose last renewal
// was age ago by the server's (here: the machine's) clock.
func plantExpired(t *testing.T, p string, age time.Duration) {
	t.Helper()
	plant(t, p, Record{Host: "gone-host", Pid: 4242, Message: "frozen"})
	old := time.Now().Add(-age)
	if err := os.Chtimes(lockFile(p), old, old); err != nil {
		t.Fatal(err)
	}
}

func TestParseLease(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30s\n": 30 * time.Second, "1m30s": 90 * time.Second, "2.5": 2500 * time.Millisecond,
		"# comment\n\n  45  \n": 45 * time.Second,
	} {
		if got, err := ParseLease([]byte(in)); err != nil || got != want {
			t.Errorf("ParseLease(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "# only a comment\n", "30s\n40s\n", "soon", "100ms", "48h", "-5"} {
		if got, err := ParseLease([]byte(in)); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("ParseLease(%q) = %v, %v; want an error matching EINVAL", in, got, err)
		}
	}
}

func TestLeaseHelperNamesAreHidden(t *testing.T) {
	for _, name := range []string{LeaseFile, "a b" + TokenSuffix, "x." + strings.Repeat("0f", 8) + ".12" + ClaimSuffix} {
		if !IsHelperFile(name) {
			t.Errorf("IsHelperFile(%q) = false", name)
		}
	}
	for _, name := range []string{"lease", "x.lock-break", "x.0f.1" + ClaimSuffix, "nfslock-token"} {
		if IsHelperFile(name) {
			t.Errorf("IsHelperFile(%q) = true", name)
		}
	}
}

// Without the opt-in file a lock is Core's: no token, no lease, no file
// beside the lock's own.
func TestNoLeaseWithoutOptIn(t *testing.T) {
	p := lockIn(t)
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if l.Token() != 0 || l.Lost() != nil || l.Err() != nil {
		t.Errorf("outside a lease directory: token %d, lost channel %v, Err %v; want 0, nil, nil", l.Token(), l.Lost(), l.Err())
	}
	h, err := Inspect(p)
	if err != nil || h.Lease != nil {
		t.Errorf("Inspect: lease %+v, %v; want none", h.Lease, err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if names := testutil.Names(t, filepath.Dir(p)); len(names) != 0 {
		t.Errorf("left in the directory: %q", names)
	}
	if err := l.Err(); !errors.Is(err, ErrNotLocked) {
		t.Errorf("Err after Unlock: %v, want ErrNotLocked", err)
	}
}

// Tokens grow by one per acquisition, and a held lease is renewed on the
// server's clock while held-since keeps the acquisition time.
func TestLeaseTokenAndRenewal(t *testing.T) {
	p := leaseDir(t, testLease)
	var last uint64
	for i := range 3 {
		l, err := TryLock(p)
		if err != nil {
			t.Fatal(err)
		}
		if l.Token() != last+1 {
			t.Errorf("acquisition %d: token %d, want %d", i+1, l.Token(), last+1)
		}
		last = l.Token()
		if err := l.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	first, err := Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	if first.Lease == nil || first.Lease.Token != l.Token() || first.Lease.Duration != testLease {
		t.Fatalf("Inspect: lease %+v; want token %d, duration %v", first.Lease, l.Token(), testLease)
	}
	// Held for 1.5 leases: renewed, never broken, held-since unchanged.
	time.Sleep(testLease * 3 / 2)
	if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock of a lease renewed by its holder: %v, want ErrLocked", err)
	}
	later, err := Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	if !later.Lease.Renewed.After(first.Lease.Renewed) {
		t.Errorf("lock file's mtime %v not renewed after %v", later.Lease.Renewed, first.Lease.Renewed)
	}
	if !later.Since.Equal(first.Since) || !later.Since.Equal(later.Lease.HeldSince) {
		t.Errorf("held-since moved from %v to %v (declared %v)", first.Since, later.Since, later.Lease.HeldSince)
	}
	if err := l.Err(); err != nil {
		t.Errorf("Err of a renewed lease: %v", err)
	}
	// The record can change; the token and held-since stay.
	if err := l.SetMessage("new"); err != nil {
		t.Fatal(err)
	}
	if h, err := Inspect(p); err != nil || h.Lease.Token != l.Token() || !h.Since.Equal(first.Since) {
		t.Errorf("after SetMessage: %+v, %v", h, err)
	}
}

// A lock whose holder stopped renewing is broken once the server's clock
// shows it a lease old, not before; the new holder's token is larger.
func TestExpiredLeaseIsBroken(t *testing.T) {
	p := leaseDir(t, testLease)
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	token := l.Token()
	l.Unlock()

	plantExpired(t, p, testLease/2)
	if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock of a lease half its age: %v, want ErrLocked", err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 5*testLease)
	defer cancel()
	l, err = Acquire(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	t.Logf("a lease half expired was broken after %v (lease %v)", time.Since(start), testLease)
	if waited := time.Since(start); waited < testLease/3 || waited > testLease {
		t.Errorf("the waiter got the lock after %v; want about %v", waited, testLease/2)
	}
	if l.Token() <= token {
		t.Errorf("token after a break: %d, want more than %d", l.Token(), token)
	}
	if names := testutil.Names(t, filepath.Dir(p)); len(names) != 5 { // lease file, P, P.nfs_lock, the exclusive mark, token file
		t.Errorf("left in the directory: %q", names)
	}
}

// The breaker never removes a lock renewed, or released and taken again,
// after it judged it expired.
func TestBreakerLeavesRenewedOrRetakenLock(t *testing.T) {
	p := leaseDir(t, testLease)
	judged := func() (Holder, fileID) {
		plantExpired(t, p, 2*testLease)
		h, id, err := readLockFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if expired, _, err := judgeExpiry(p, h); err != nil || !expired {
			t.Fatalf("judgeExpiry: %v, %v; want expired", expired, err)
		}
		return h, id
	}
	h, id := judged()
	if err := os.Chtimes(lockFile(p), time.Time{}, time.Now()); err != nil { // the holder renews at the last moment
		t.Fatal(err)
	}
	if _, err := breakExpired(p, h.Raw, id, testLease); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(lockFile(p)); err != nil {
		t.Errorf("a lock renewed after it was judged expired was removed: %v", err)
	}

	h, id = judged()
	os.Remove(lockFile(p)) // released, and taken again by another holder
	plant(t, p, Record{Host: "other-host", Pid: 7, Message: "new holder"})
	if _, err := breakExpired(p, h.Raw, id, testLease); err != nil {
		t.Fatal(err)
	}
	if rec, err := ReadRecord(p); err != nil || rec.Message != "new holder" {
		t.Errorf("the new holder's lock: %+v, %v; want it left in place", rec, err)
	}
}

// Every host names a version's claim alike: NFS clients number the device
// each their own way.
func TestLockVersionIgnoresDevice(t *testing.T) {
	at := time.Now()
	a := lockVersion(fileID{dev: 1, ino: 7, mtime: at}, []byte("r"))
	if b := lockVersion(fileID{dev: 2, ino: 7, mtime: at}, []byte("r")); a != b {
		t.Errorf("versions differ with the device: %s, %s", a, b)
	}
	for _, other := range []string{
		lockVersion(fileID{dev: 1, ino: 8, mtime: at}, []byte("r")),
		lockVersion(fileID{dev: 1, ino: 7, mtime: at.Add(time.Nanosecond)}, []byte("r")),
		lockVersion(fileID{dev: 1, ino: 7, mtime: at}, []byte("s")),
	} {
		if other == a {
			t.Errorf("another inode, mtime or record gives the same version %s", a)
		}
	}
}

// A live claim of another breaker keeps the lock; an expired one (its
// breaker died) is taken over by the next claim.
func TestBreakClaims(t *testing.T) {
	p := leaseDir(t, testLease)
	plantExpired(t, p, 2*testLease)
	h, id, err := readLockFile(p)
	if err != nil {
		t.Fatal(err)
	}
	first := claimFile(p, lockVersion(id, h.Raw), 1)
	if err := os.WriteFile(first, []byte("another breaker"), 0o644); err != nil {
		t.Fatal(err)
	}
	if retry, err := breakExpired(p, h.Raw, id, testLease); err != nil || retry {
		t.Fatalf("breakExpired beside a live claim: %v, %v; want no retry", retry, err)
	}
	if _, err := os.Lstat(lockFile(p)); err != nil {
		t.Fatalf("removed beside a live claim: %v", err)
	}
	old := time.Now().Add(-2 * testLease)
	os.Chtimes(first, old, old) // that breaker died long ago
	if retry, err := breakExpired(p, h.Raw, id, testLease); err != nil || !retry {
		t.Fatalf("breakExpired beside an expired claim: %v, %v; want it broken", retry, err)
	}
	if _, err := os.Lstat(lockFile(p)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock not removed: %v", err)
	}
	if names := testutil.Names(t, filepath.Dir(p)); len(names) != 1 {
		t.Errorf("left in the directory: %q, want only the lease file", names)
	}
}

// Many breakers at once: exactly one takes the expired lock, round after
// round. (Across hosts: the cluster test.)
func TestConcurrentBreakersOneWinner(t *testing.T) {
	p := leaseDir(t, testLease)
	const rounds, breakers = 20, 6
	for round := range rounds {
		plantExpired(t, p, 2*testLease)
		var wg sync.WaitGroup
		won := make(chan *Lock, breakers)
		for range breakers {
			wg.Go(func() {
				l, err := tryLockOnce(p)
				if err == nil {
					won <- l
				} else if !errors.Is(err, ErrLocked) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		close(won)
		var n int
		for l := range won {
			n++
			if err := l.Unlock(); err != nil {
				t.Error(err)
			}
		}
		if n != 1 {
			t.Fatalf("round %d: %d breakers took the lock, want 1", round, n)
		}
	}
}

// tryLockOnce is TryLock without the process's own registry, as a
// process of its own would call it.
func tryLockOnce(p string) (*Lock, error) {
	o := buildOptions(nil)
	rec, err := o.record()
	if err != nil {
		return nil, err
	}
	l, err := tryAcquire(p, rec, o.onStale, true)
	if err != nil {
		return nil, err
	}
	l.log = o.log
	return l, nil
}

// A lease removed behind its holder's back is lost: the channel closes
// within a renewal period, and every call fails with ErrLost, removing
// nothing of the new holder's.
func TestLostLease(t *testing.T) {
	p := leaseDir(t, testLease)
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(lockFile(p))
	plant(t, p, Record{Host: "other-host", Pid: 7, Message: "new holder"})
	select {
	case <-l.Lost():
	case <-time.After(testLease):
		t.Fatal("Lost not closed within a lease after the lock was taken over")
	}
	for name, err := range map[string]error{"Err": l.Err(), "SetMessage": l.SetMessage("x"), "Unlock": l.Unlock()} {
		if !errors.Is(err, ErrLost) {
			t.Errorf("%s after the loss: %v, want ErrLost", name, err)
		}
	}
	if rec, err := ReadRecord(p); err != nil || rec.Message != "new holder" {
		t.Errorf("the new holder's lock: %+v, %v", rec, err)
	}
	// The process no longer counts the lock as its own.
	os.Remove(lockFile(p))
	l2, err := TryLock(p)
	if err != nil {
		t.Fatalf("TryLock after the loss: %v", err)
	}
	l2.Unlock()
}

// A holder stopped for longer than its lease (here: its clock jumps as if
// it had been) learns of the loss at its first call, before the renewer
// runs.
func TestStoppedHolderKnowsItLost(t *testing.T) {
	p := leaseDir(t, testLease)
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	skewClock(t, testLease)
	if err := l.Err(); !errors.Is(err, ErrLost) {
		t.Errorf("Err after a stop of one lease: %v, want ErrLost", err)
	}
	select {
	case <-l.Lost():
	default:
		t.Error("Lost not closed")
	}
}

// A client clock minutes off changes nothing: the holder keeps its lease,
// and an expired one is broken on the server's clock alone.
func TestClockSkewChangesNothing(t *testing.T) {
	for _, skew := range []time.Duration{-7 * time.Minute, 11 * time.Minute} {
		t.Run(skew.String(), func(t *testing.T) {
			skewClock(t, skew)
			p := leaseDir(t, testLease)
			l, err := TryLock(p)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(testLease * 3 / 2)
			if _, err := tryLockOnce(p); !errors.Is(err, ErrLocked) {
				t.Errorf("a renewed lease under skew %v: %v, want ErrLocked", skew, err)
			}
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
			plantExpired(t, p, testLease/2)
			if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
				t.Errorf("a lease half its age under skew %v: %v, want ErrLocked", skew, err)
			}
			plantExpired(t, p, 2*testLease)
			l, err = TryLock(p)
			if err != nil {
				t.Fatalf("an expired lease under skew %v: %v", skew, err)
			}
			l.Unlock()
		})
	}
}

func TestInvalidLeaseFileFailsLoudly(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, LeaseFile), []byte("soon\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leaseConfigs.Delete(dir) })
	p := filepath.Join(dir, "lock")
	_, err := TryLock(p)
	if !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), LeaseFile) {
		t.Errorf("TryLock under an invalid lease file: %v; want EINVAL naming the lock and the file", err)
	}
}

// Many held leases cost one scheduling goroutine and at most one batch in
// flight, not a goroutine each; all are renewed.
func TestRenewalsShareOneGoroutine(t *testing.T) {
	const n = 200
	p := leaseDir(t, testLease)
	before := runtime.NumGoroutine()
	var locks []*Lock
	for i := range n {
		l, err := TryLock(p + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		locks = append(locks, l)
	}
	first, err := Inspect(locks[0].Path())
	if err != nil {
		t.Fatal(err)
	}
	most := 0
	for end := time.Now().Add(testLease * 3 / 2); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		most = max(most, runtime.NumGoroutine()-before)
	}
	t.Logf("%d leases held for 1.5 leases: at most %d more goroutines", n, most)
	if most > 2 {
		t.Errorf("%d leases took %d goroutines, want at most 2 (the scheduler and one batch)", n, most)
	}
	for _, l := range locks {
		h, err := Inspect(l.Path())
		if err != nil || !h.Lease.Renewed.After(first.Lease.Renewed) || l.Err() != nil {
			t.Fatalf("%s: %+v, %v, Err %v: not renewed", l.Path(), h.Lease, err, l.Err())
		}
		if err := l.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
}

// A server that hangs: renewals block, but the holder still learns of the
// loss at its deadline (the renewer's scheduler does no I/O), Err answers
// at once, and once the server is back the lock expires and is taken again.
func TestLeaseLostWhileServerHangs(t *testing.T) {
	testenv.NeedFUSE(t)
	backing, mnt := t.TempDir(), t.TempDir()
	fault, err := faultfs.Mount(backing, mnt, faultfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fault.Unmount() })
	if err := os.WriteFile(filepath.Join(backing, LeaseFile), []byte(testLease.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leaseConfigs.Delete(mnt) })
	p := filepath.Join(mnt, "lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	fault.Hang()
	hung := time.Now()
	select {
	case <-l.Lost():
		t.Logf("lease lost %v after the server hung (lease %v)", time.Since(hung).Round(time.Millisecond), testLease)
	case <-time.After(testLease):
		fault.Resume()
		t.Fatal("Lost not closed within a lease of the server hanging")
	}
	answered := make(chan error, 1)
	go func() { answered <- l.Err() }()
	select {
	case err := <-answered:
		if !errors.Is(err, ErrLost) {
			t.Errorf("Err while the server hangs: %v, want ErrLost", err)
		}
	case <-time.After(time.Second):
		t.Error("Err blocked while the server hangs")
	}
	fault.Resume()
	if err := l.Unlock(); !errors.Is(err, ErrLost) {
		t.Errorf("Unlock after the loss: %v, want ErrLost", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*testLease)
	defer cancel()
	l, err = Acquire(ctx, p)
	if err != nil {
		t.Fatalf("taking the expired lock again: %v", err)
	}
	if l.Token() != 2 {
		t.Errorf("token %d, want 2", l.Token())
	}
	l.Unlock()
}

// A holder that finds its lease past its deadline inside a call (Unlock,
// SetMessage) fails the call with ErrLost, without deadlock.
func TestLossFoundInsideACall(t *testing.T) {
	p := leaseDir(t, testLease)
	for _, call := range []func(*Lock) error{(*Lock).Unlock, func(l *Lock) error { return l.SetMessage("m") }} {
		l, err := TryLock(p)
		if err != nil {
			t.Fatal(err)
		}
		skewClock(t, testLease)
		done := make(chan error, 1)
		go func() { done <- call(l) }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrLost) {
				t.Errorf("a call past the deadline: %v, want ErrLost", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a call past the deadline hangs")
		}
		localClock.Store(skewedClock(0))
		os.Remove(lockFile(p)) // it expires; make room at once
	}
}
