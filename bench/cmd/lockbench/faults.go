package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/faultfs"
)

// Figure 4 (requests) and figure 5: the tools over internal/faultfs, the
// test-only passthrough filesystem that stands in for an NFS server. Its
// request counts stand in for NFS round trips; with a fixed latency on
// every request, figures 1 and 2 again show what users on NFS feel.

// nfsLatency is the round trip figure 5 adds to every request.
const nfsLatency = 500 * time.Microsecond

// A faultRun is the tools' results over faultfs.
type faultRun struct {
	perRequest  time.Duration      // a request's time with nfsLatency set, as measured
	requests    map[string]opCount // per tool: requests per acquire+release, without latency
	uncontended map[string]timing
	handoffs    map[string][]handoff
	skipped     map[string]string // per tool: why a figure is missing
	errs        []string          // tools that failed, and how
}

// overFaultfs mounts faultfs over a fresh directory, and an nfslockfs over
// a directory of it when there is a mount binary, and measures there each
// of the tools named in only.
func overFaultfs(s *setup, nfslockfs string, handoffN int, only []*tool) (*faultRun, error) {
	backing, mnt := filepath.Join(s.work, "faultfs-backing"), filepath.Join(s.work, "faultfs-mnt")
	for _, d := range []string{backing, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	f, err := faultfs.Mount(backing, mnt, faultfs.Options{})
	if err != nil {
		return nil, err
	}
	defer f.Unmount()
	fs := *s
	fs.work, fs.mnt, fs.scratch, fs.flat = mnt, "", filepath.Join(s.scratch, "faultfs"), true
	if nfslockfs != "" {
		d, err := startDaemon(nfslockfs, mnt, filepath.Join(s.work, "faultfs-nfslockfs-mnt"))
		if err != nil {
			return nil, err
		}
		defer d.stop()
		fs.mnt = d.mnt
	}
	r := &faultRun{requests: map[string]opCount{}, uncontended: map[string]timing{},
		handoffs: map[string][]handoff{}, skipped: map[string]string{}}
	f.SetLatency(nfsLatency)
	r.perRequest = requestTime(mnt)
	baseline, _ := s.baselines()
	holds := sameHostHolds(handoffN, 5)
	wanted := map[string]bool{}
	for _, t := range only {
		wanted[t.name] = t.kind != control
	}
	for _, t := range fs.tools() {
		if !wanted[t.name] {
			continue
		}
		progress("faultfs: %s", t.name)
		if err := r.measure(t, f, baseline, holds); err != nil {
			r.errs = append(r.errs, oneLine(fmt.Sprintf("%s: %v", t.name, err)))
		}
	}
	return r, nil
}

// measure takes t's figures over f: requests without latency, figures 1
// and 2 with it.
func (r *faultRun) measure(t *tool, f *faultfs.FS, baseline *tool, holds []time.Duration) (err error) {
	f.SetLatency(0)
	if r.requests[t.name], err = requestsPerCycle(t, f, 20); err != nil {
		return err
	}
	f.SetLatency(nfsLatency)
	if r.uncontended[t.name], err = cycleTimes(t, baseline, 150*time.Millisecond); err != nil {
		return err
	}
	if t.slow {
		r.skipped[t.name] = "waits by sleeping seconds: a few 0.5 ms round trips do not change its handoff"
		return nil
	}
	r.handoffs[t.name], err = handoffs(t, holds, 1)
	return err
}

// requestsPerCycle counts the requests faultfs serves for n uncontended
// cycles of t, per cycle.
func requestsPerCycle(t *tool, f *faultfs.FS, n int) (opCount, error) {
	lock, err := t.lockPath("requests")
	if err != nil {
		return nil, err
	}
	p, err := startProc(t.spec(lock))
	if err != nil {
		return nil, err
	}
	defer p.stop()
	if _, err := p.call("cycles 3"); err != nil {
		return nil, err
	}
	time.Sleep(50 * time.Millisecond) // RELEASE follows close asynchronously
	f.ResetCounts()
	if _, err := p.call(fmt.Sprint("cycles ", n)); err != nil {
		return nil, err
	}
	time.Sleep(100 * time.Millisecond)
	c := opCount{}
	for op, v := range f.Counts() {
		c[string(op)] = float64(v) / float64(n)
	}
	return c, nil
}

// requestTime times a request to the mount: the lstat of a missing name,
// which costs one LOOKUP. The latency is a sleep, which a loaded machine
// lengthens.
func requestTime(mnt string) time.Duration {
	const n = 200
	missing := filepath.Join(mnt, "missing")
	start := time.Now()
	for range n {
		os.Lstat(missing)
	}
	return time.Since(start) / n
}
