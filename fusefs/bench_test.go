//go:build linux

package fusefs

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The benchmarks report, besides ns/op, the median and 99th percentile of
// the single operations (p50-µs, p99-µs). The backing directory is on
// tmpfs when /dev/shm exists, so that they measure the filesystem, not the
// disk; on NFS every lock operation adds the server's round trips.

// tmpfsDir returns a fresh directory on tmpfs if there is one, else a
// temporary directory, removed when b ends.
func tmpfsDir(b *testing.B) string {
	b.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "fusefs-bench-")
	if err != nil {
		return b.TempDir()
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// reportPercentiles reports the median and 99th percentile of samples.
func reportPercentiles(b *testing.B, samples []time.Duration) {
	b.Helper()
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(samples[len(samples)/2]), "p50-µs")
	b.ReportMetric(us(samples[len(samples)*99/100]), "p99-µs")
}

// BenchmarkOpenCloseLock is an uncontended lock and release through the
// mount: open(O_WRONLY|O_CREAT) and close. The next open waits for the
// previous release, which RELEASE makes asynchronous, so each iteration
// pays for a whole acquire and release.
func BenchmarkOpenCloseLock(b *testing.B) {
	m := mountBacking(b, tmpfsDir(b), FormatText)
	samples := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		f, err := m.openWrite("bench", 0)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
		samples = append(samples, time.Since(start))
	}
	reportPercentiles(b, samples)
}

// BenchmarkOpenClosePlainFile is the floor: open and close of a plain file
// in the backing directory, without FUSE or locking.
func BenchmarkOpenClosePlainFile(b *testing.B) {
	path := filepath.Join(tmpfsDir(b), "plain")
	samples := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o666)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
		samples = append(samples, time.Since(start))
	}
	reportPercentiles(b, samples)
}

// BenchmarkHandoff is a same-node handoff: this process closes the lock
// while another process's open of it is blocked, and the time is measured
// from the start of close(2) to the return of the waiter's open(2): p50-µs
// and p99-µs (the waiter reads the clock just after its open returns). A
// process may not reopen a lock it holds (EDEADLK), so the waiter is a
// process of its own each time, and this process takes the lock back after
// it. ns/op includes starting each waiter, waiting until it is blocked and
// taking the lock back, and means little.
func BenchmarkHandoff(b *testing.B) {
	m := mountBacking(b, tmpfsDir(b), FormatText)
	holder, err := m.openWrite("handoff", 0)
	if err != nil {
		b.Fatal(err)
	}
	// Closed before the mount goes (whose cleanup comes first, so runs
	// last): a file left open would hang this process's exit.
	defer func() { holder.Close() }()
	samples := make([]time.Duration, 0, b.N)
	for b.Loop() {
		waiter := m.startHolder(b, "handoff")
		m.waitForWaiters(b, 1)
		time.Sleep(100 * time.Microsecond) // it is queued in the library
		start := time.Now()
		holder.Close()
		samples = append(samples, waiter.held(b, 10*time.Second).Sub(start))
		waiter.Close()
		if holder, err = m.openWrite("handoff", 0); err != nil {
			b.Fatal(err)
		}
	}
	reportPercentiles(b, samples)
}
