package main

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// results gathers one run's measurements, by tool name, and what could not
// be measured and why.
type results struct {
	sz                sizes
	work              string // where the lock directories are
	started, finished time.Time
	loadBefore        string
	loadAfter         string
	tools             []*tool
	daemon            *daemon

	cStart, goStart []time.Duration // process start-ups, per start
	uncontended     map[string]timing
	handoffs        map[string][]handoff
	contention      map[string]throughput
	syscalls        map[string]opCount
	daemonSyscalls  opCount
	crossHost       []policyRun
	crossHolds      []time.Duration
	faults          *faultRun
	held            *heldScale
	waiting         *waitScale

	goBench   map[string][]float64 // ns/op by benchmark name, from -gobench
	benchstat string
	notes     []string
}

func newResults(sz sizes) *results {
	return &results{sz: sz, started: time.Now(), loadBefore: loadavg(),
		uncontended: map[string]timing{}, handoffs: map[string][]handoff{},
		contention: map[string]throughput{}, syscalls: map[string]opCount{}}
}

// note records what is missing from the run and why, on one line of the doc.
func (r *results) note(format string, args ...any) {
	r.notes = append(r.notes, oneLine(fmt.Sprintf(format, args...)))
}

// oneLine fits a message (often a worker's stderr) on one line of a list.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 600 {
		s = s[:600] + " …"
	}
	return s
}

func (r *results) finish() { r.finished, r.loadAfter = time.Now(), loadavg() }

func (r *results) measureUncontended(s *setup, sz sizes) error {
	cStart, goStart := s.baselines()
	for _, t := range append([]*tool{cStart, goStart}, r.tools...) {
		if t.kind == control {
			continue
		}
		progress("uncontended: %s", t.name)
		tm, err := cycleTimes(t, cStart, sz.runTime)
		switch {
		case err != nil:
			r.note("Figure 1, %s: %v", t.name, err)
		case t == cStart:
			r.cStart = tm.gross
		case t == goStart:
			r.goStart = tm.gross
		default:
			r.uncontended[t.name] = tm
		}
	}
	return nil
}

func (r *results) measureSyscalls(sz sizes) error {
	for _, t := range r.tools {
		if t.kind == control {
			continue
		}
		progress("syscalls: %s", t.name)
		var d *daemon
		if t.kind == mountKind {
			d = r.daemon
		}
		client, backing, err := syscallsPerCycle(t, sz.syscallCycles, d)
		if err != nil {
			r.note("Figure 4, %s: %v", t.name, err)
			continue
		}
		r.syscalls[t.name] = client
		if backing != nil {
			r.daemonSyscalls = backing
		}
	}
	return nil
}

func (r *results) measureContention(sz sizes) error {
	for _, t := range r.tools {
		progress("contention: %s", t.name)
		c, err := contention(t, sz.contenders, sz.contention)
		if err != nil {
			r.note("Figure 3, %s: %v", t.name, err)
			continue
		}
		r.contention[t.name] = c
	}
	return nil
}

// measureHandoffs runs the fast tools one after the other, then every
// tool that waits by sleeping all at once, each over several pairs: they
// sleep for seconds, so running together costs them nothing measurable.
func (r *results) measureHandoffs(sz sizes) error {
	holds := sameHostHolds(sz.handoffs, 1)
	var slow []*tool
	for _, t := range r.tools {
		switch {
		case t.kind == control:
		case t.slow:
			slow = append(slow, t)
		default:
			progress("handoff: %s", t.name)
			hs, err := handoffs(t, holds, 1)
			r.handoffs[t.name] = hs
			if err != nil {
				r.note("Figure 2, %s: %v", t.name, err)
			}
		}
	}
	progress("handoff: %d tools that sleep, at once", len(slow))
	type outcome struct {
		hs  []handoff
		err error
	}
	done := make([]chan outcome, len(slow))
	for i, t := range slow {
		done[i] = make(chan outcome, 1)
		go func() {
			hs, err := handoffs(t, holds, sz.slowPairs)
			done[i] <- outcome{hs, err}
		}()
	}
	for i, t := range slow {
		o := <-done[i]
		r.handoffs[t.name] = o.hs
		if o.err != nil {
			r.note("Figure 2, %s: %v", t.name, o.err)
		}
	}
	return nil
}

func (r *results) measureCrossHost(s *setup, sz sizes) error {
	r.crossHolds = crossHostHolds(sz.crossHandoffs, 2)
	var err error
	r.crossHost, err = crossHost(s, []string{"library", "coresim"}, r.crossHolds, sz.crossPairs)
	return err
}

func (r *results) measureScale(sz sizes) error {
	if r.daemon == nil {
		r.note("Figure 6 is missing: it needs the nfslockfs mount.")
		return nil
	}
	h, err := holdMany(r.daemon, sz.heldLocks)
	r.held = &h
	if err != nil {
		return err
	}
	w, err := queueMany(r.daemon, sz.queuedWaiters)
	r.waiting = &w
	return err
}

// readGoBench reads the ns/op of each benchmark from go test -bench output,
// and notes the benchmarks that failed.
func (r *results) readGoBench(name string) {
	f, err := os.Open(name)
	if err != nil {
		r.note("Go benchmarks: %v", err)
		return
	}
	defer f.Close()
	r.goBench = map[string][]float64{}
	sc := bufio.NewScanner(f)
	failed := map[string]bool{}
	var pkg string
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "pkg: "); ok {
			pkg = path.Base(p)
		}
		if name, ok := strings.CutPrefix(sc.Text(), "--- FAIL: "); ok && !failed[pkg+name] {
			failed[pkg+name] = true
			r.note("Go benchmark %s of package %s failed in this run, so its figures are missing below (its output is in make bench's).", name, pkg)
		}
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		for i := 2; i+1 < len(fields); i += 2 {
			if fields[i+1] == "ns/op" {
				if v, err := strconv.ParseFloat(fields[i], 64); err == nil {
					name := fields[0]
					if i := strings.LastIndex(name, "-"); i > 0 {
						name = name[:i] // the -GOMAXPROCS suffix
					}
					r.goBench[name] = append(r.goBench[name], v)
				}
			}
		}
	}
}

func loadavg() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
