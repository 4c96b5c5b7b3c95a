//go:build linux

package nfslock

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Results and how to reproduce them: docs/benchmarks.md.

// BenchmarkTryLockUnlock takes and releases a free lock.
func BenchmarkTryLockUnlock(b *testing.B) {
	p := filepath.Join(b.TempDir(), "lock")
	for b.Loop() {
		l, err := TryLock(p)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Unlock(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareSyscalls is the floor under BenchmarkTryLockUnlock: the
// filesystem operations of one uncontended TryLock and Unlock, as
// scripts/count-syscalls.sh lists them, made directly and nothing else: no
// record to build, check or parse, no Go file objects.
func BenchmarkBareSyscalls(b *testing.B) {
	p := filepath.Join(b.TempDir(), "lock")
	attempt, lock := attemptFile(p), lockFile(p)
	rec, err := recordFor(os.Getpid(), "")
	if err != nil {
		b.Fatal(err)
	}
	data := rec.Encode()
	buf := make([]byte, 512)
	var st syscall.Stat_t
	check := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		fd, err := syscall.Open(attempt, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY|syscall.O_CLOEXEC, 0o666)
		check(err)
		_, err = syscall.Write(fd, data)
		check(err)
		check(syscall.Fstat(fd, &st))
		check(syscall.Close(fd))
		check(syscall.Link(attempt, lock))
		check(syscall.Link(attempt, p))
		check(syscall.Unlink(attempt))

		fd, err = syscall.Open(lock, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		check(err)
		check(syscall.Fstat(fd, &st))
		_, err = syscall.Read(fd, buf)
		check(err)
		check(syscall.Close(fd))
		check(syscall.Unlink(p))
		check(syscall.Unlink(lock))
	}
}

// BenchmarkHandoff measures how soon a release in this process reaches a
// goroutine blocked in Acquire: from just before Unlock until the waiter's
// Acquire returns. It reports the median, 90th percentile and mean as
// ns/handoff-p50, ns/handoff-p90 and ns/handoff-mean. ns/op also counts
// starting the waiter and giving it time to block.
func BenchmarkHandoff(b *testing.B) {
	p := filepath.Join(b.TempDir(), "lock")
	held, err := TryLock(p)
	if err != nil {
		b.Fatal(err)
	}
	type acquired struct {
		lock *Lock
		at   time.Time
		err  error
	}
	var handoffs []time.Duration
	for b.Loop() {
		got := make(chan acquired, 1)
		go func() {
			l, err := Acquire(b.Context(), p)
			got <- acquired{l, time.Now(), err}
		}()
		waitUntilQueued(b, p)
		time.Sleep(100 * time.Microsecond) // from the queue into its select
		released := time.Now()
		if err := held.Unlock(); err != nil {
			b.Fatal(err)
		}
		a := <-got
		if a.err != nil {
			b.Fatal(a.err)
		}
		handoffs = append(handoffs, a.at.Sub(released))
		held = a.lock
	}
	if err := held.Unlock(); err != nil {
		b.Fatal(err)
	}
	reportLatencies(b, "handoff", handoffs)
}

// waitUntilQueued waits until a waiter is queued for the lock p.
func waitUntilQueued(b *testing.B, p string) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Microsecond) {
		if waiting(p) > 0 {
			return
		}
	}
	b.Fatal("no waiter queued within 10s")
}

// BenchmarkHandoffCrossProcess measures how soon a release reaches a waiter
// in another process of this host, which inotify wakes. It reports two
// latencies from just before Unlock (wall clocks of one machine): until the
// waiter has re-created the lock file, seen by the releaser polling it with
// lstat (ns/taken-*), and until the waiter's Acquire returns
// (ns/handoff-*), as in BenchmarkHandoff. ns/op also counts a 2 ms pause in
// which the child starts waiting.
func BenchmarkHandoffCrossProcess(b *testing.B) {
	p := filepath.Join(b.TempDir(), "lock")
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
	defer cancel()
	c := startChild(ctx, b, "handoff-waiter", nil, p)
	var taken, handoffs []time.Duration
	for b.Loop() {
		held, err := TryLock(p)
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintln(c.stdin, "acquire")
		c.expect(b, "waiting")
		time.Sleep(2 * time.Millisecond) // the child tries once, then blocks
		released := time.Now()
		if err := held.Unlock(); err != nil {
			b.Fatal(err)
		}
		taken = append(taken, waitForLockFile(b, p).Sub(released))
		line, err := c.readLine()
		if err != nil {
			b.Fatalf("%v\n%s", err, c.stderr.Bytes())
		}
		ns, err := strconv.ParseInt(strings.TrimPrefix(line, "acquired "), 10, 64)
		if err != nil {
			b.Fatalf("child said %q", line)
		}
		handoffs = append(handoffs, time.Unix(0, ns).Sub(released))
		fmt.Fprintln(c.stdin, "release")
		c.expect(b, "released")
	}
	waitAll(b, c)
	reportLatencies(b, "taken", taken)
	reportLatencies(b, "handoff", handoffs)
}

// waitForLockFile polls until p's lock file exists and returns when it saw it.
func waitForLockFile(b *testing.B, p string) time.Time {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if _, err := os.Lstat(lockFile(p)); err == nil {
			return time.Now()
		}
	}
	b.Fatal("the waiter did not take the lock within 10s")
	return time.Time{}
}

// handoffWaiterChild is the "handoff-waiter" role: args are the lock path.
// On "acquire" it says "waiting", takes the lock with Acquire and says
// "acquired UNIXNANO", the instant Acquire returned; on "release" it
// releases the lock and says "released".
func handoffWaiterChild(args []string) error {
	p := args[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var held *Lock
	orders := bufio.NewScanner(os.Stdin)
	for orders.Scan() {
		var err error
		switch order := orders.Text(); {
		case order == "acquire" && held == nil:
			fmt.Println("waiting")
			if held, err = Acquire(ctx, p); err != nil {
				return err
			}
			fmt.Println("acquired", time.Now().UnixNano())
		case order == "release" && held != nil:
			if err = held.Unlock(); err != nil {
				return err
			}
			held = nil
			fmt.Println("released")
		default:
			return fmt.Errorf("unexpected order %q", order)
		}
	}
	return orders.Err()
}

// reportLatencies reports the median, 90th percentile and mean of ds as
// ns/NAME-p50, ns/NAME-p90 and ns/NAME-mean.
func reportLatencies(b *testing.B, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	b.ReportMetric(float64(ds[len(ds)/2]), "ns/"+name+"-p50")
	b.ReportMetric(float64(ds[len(ds)*9/10]), "ns/"+name+"-p90")
	b.ReportMetric(float64(sum)/float64(len(ds)), "ns/"+name+"-mean")
}

// oneCycleChild is the "one-cycle" role, for counting system calls
// (scripts/count-syscalls.sh): args are lock paths, and it takes and
// releases each once, in order. The first path warms up what a process does
// once (hostname, boot time); the calls for the last are the ones counted.
func oneCycleChild(args []string) error {
	for _, p := range args {
		l, err := TryLock(p)
		if err != nil {
			return err
		}
		if err := l.Unlock(); err != nil {
			return err
		}
	}
	return nil
}
