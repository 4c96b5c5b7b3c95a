package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Sizes of the run: samples enough for stable medians, bounded in time
// (make bench must finish within 10 minutes on 2 cores).
type sizes struct {
	runTime       time.Duration // per timed run of figure 1
	handoffs      int           // figure 2, per tool
	slowPairs     int           // concurrent pairs for tools that sleep seconds
	contention    time.Duration // figure 3, per tool
	contenders    int
	syscallCycles int // figure 4
	crossHandoffs int // per policy
	crossPairs    int
	faultHandoffs int // figure 5
	heldLocks     int // figure 6
	queuedWaiters int
}

var fullSizes = sizes{runTime: 200 * time.Millisecond, handoffs: 50, slowPairs: 10, contention: 3 * time.Second,
	contenders: 4, syscallCycles: 20, crossHandoffs: 100, crossPairs: 5, faultHandoffs: 50, heldLocks: 10000, queuedWaiters: 1000}

var quickSizes = sizes{runTime: 50 * time.Millisecond, handoffs: 10, slowPairs: 5, contention: time.Second,
	contenders: 4, syscallCycles: 10, crossHandoffs: 10, crossPairs: 5, faultHandoffs: 10, heldLocks: 500, queuedWaiters: 50}

func runMain(args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	bin := fs.String("bin", "bin", "directory of nfslock and nfslockfs")
	peers := fs.String("peers", "bench/peers", "directory of the peer workers")
	work := fs.String("work", "", "scratch directory (default: a new one under $TMPDIR, removed afterwards)")
	doc := fs.String("doc", "", "rewrite lockbench's sections of this markdown file")
	chart := fs.String("chart", "", "write the chart's data (for bench/chart.gp) to this file")
	gobench := fs.String("gobench", "", "go test -bench output of this run, for the floor target")
	benchstat := fs.String("benchstat", "", "benchstat's summary of it, quoted in the doc")
	only := fs.String("only", "", "measure only the tools whose names match this regexp")
	skip := fs.String("skip", "", "skip these parts (comma-separated: uncontended,syscalls,contention,handoff,crosshost,faultfs,scale)")
	quick := fs.Bool("quick", false, "few samples: for working on the harness, not for numbers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sz := fullSizes
	if *quick {
		sz = quickSizes
	}
	s := &setup{peers: abs(*peers), bin: abs(*bin)}
	var err error
	if s.self, err = os.Executable(); err != nil {
		return err
	}
	if *work == "" {
		if *work, err = os.MkdirTemp("", "lockbench"); err != nil {
			return err
		}
		defer os.RemoveAll(*work)
	}
	s.work = abs(*work)
	s.scratch = filepath.Join(s.work, "notes")
	if err := os.MkdirAll(s.scratch, 0o755); err != nil {
		return err
	}
	r := newResults(sz)
	r.work = s.work
	nfslockfs := filepath.Join(s.bin, "nfslockfs")
	if _, err := os.Stat(nfslockfs); err != nil {
		nfslockfs = ""
		r.note("The nfslockfs mount rows are missing: %s does not exist (build cmd/nfslockfs first).", filepath.Join(s.bin, "nfslockfs"))
	} else {
		d, err := startDaemon(nfslockfs, filepath.Join(s.work, "mount-backing"), filepath.Join(s.work, "mnt"))
		if err != nil {
			r.note("The nfslockfs mount rows are missing: %v", err)
			nfslockfs = ""
		} else {
			defer d.stop()
			s.mnt, r.daemon = d.mnt, d
		}
	}
	r.tools = s.tools()
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return err
		}
		var kept []*tool
		for _, t := range r.tools {
			if re.MatchString(t.name) {
				kept = append(kept, t)
			}
		}
		r.tools = kept
	}
	skipped := map[string]bool{}
	for _, part := range strings.Split(*skip, ",") {
		skipped[part] = true
	}
	parts := []struct {
		name string
		run  func() error
	}{
		{"uncontended", func() error { return r.measureUncontended(s, sz) }},
		{"syscalls", func() error { return r.measureSyscalls(sz) }},
		{"contention", func() error { return r.measureContention(sz) }},
		{"handoff", func() error { return r.measureHandoffs(sz) }},
		{"crosshost", func() error { return r.measureCrossHost(s, sz) }},
		{"faultfs", func() (err error) { r.faults, err = overFaultfs(s, nfslockfs, sz.faultHandoffs, r.tools); return err }},
		{"scale", func() error { return r.measureScale(sz) }},
	}
	for _, part := range parts {
		if skipped[part.name] {
			continue
		}
		progress("%s", part.name)
		if err := part.run(); err != nil {
			r.note("Part %q stopped early: %v", part.name, err)
			progress("%s: %v", part.name, err)
		}
	}
	r.finish()
	if *gobench != "" {
		r.readGoBench(*gobench)
	}
	if *benchstat != "" {
		if data, err := os.ReadFile(*benchstat); err == nil {
			r.benchstat = string(data)
		}
	}
	report := r.markdown()
	fmt.Print(report)
	if *doc != "" {
		if err := updateDoc(*doc, report); err != nil {
			return err
		}
	}
	if *chart != "" {
		return os.WriteFile(*chart, r.chartData(), 0o644)
	}
	return nil
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s lockbench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
