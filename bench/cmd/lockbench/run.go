package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Sizes of a run: samples enough for stable medians, bounded in time
// (make bench finishes in about 5 minutes on 2 cores).
type sizes struct {
	runs          int           // Cycle samples per tool
	runTime       time.Duration // per Cycle sample
	handoffs      int           // per tool
	slowPairs     int           // concurrent pairs for tools that sleep seconds (0: leave them out)
	contention    time.Duration // per tool
	contenders    int
	spreadLocks   int // ContendSpread: this many locks, contenders on each
	crossHandoffs int // per waiting policy
	crossPairs    int
	crossHoldMax  time.Duration
	heldLocks     int
	queuedWaiters int
}

var fullSizes = sizes{runs: 7, runTime: 200 * time.Millisecond, handoffs: 50, slowPairs: 10,
	contention: 3 * time.Second, contenders: 4, spreadLocks: 100,
	crossHandoffs: 100, crossPairs: 5, crossHoldMax: 2 * time.Second, heldLocks: 10000, queuedWaiters: 1000}

// quickSizes check that every part still runs, in a few seconds (the
// package's test): the numbers mean nothing.
var quickSizes = sizes{runs: 2, runTime: 10 * time.Millisecond, handoffs: 3, contention: 200 * time.Millisecond,
	contenders: 3, spreadLocks: 3, crossHandoffs: 2, crossPairs: 1, crossHoldMax: 150 * time.Millisecond,
	heldLocks: 100, queuedWaiters: 10}

// A metric is one value of a sample, in the Go benchmark format's units.
type metric struct {
	value float64
	unit  string
}

// A recorder writes the results in the Go benchmark format, one line per
// sample, and notes as comment lines ("# ..."), which benchstat ignores.
type recorder struct {
	mu sync.Mutex
	w  io.Writer
}

func (r *recorder) sample(figure, tool string, n int64, ms ...metric) {
	var b strings.Builder
	fmt.Fprintf(&b, "Benchmark%s/tool=%s %d", figure, tool, max(n, 1))
	for _, m := range ms {
		fmt.Fprintf(&b, " %.6g %s", m.value, m.unit)
	}
	r.println(b.String())
}

// note records what is missing from the run and why, on one line.
func (r *recorder) note(format string, args ...any) {
	s := strings.Join(strings.Fields(fmt.Sprintf(format, args...)), " ")
	if len(s) > 400 {
		s = s[:400] + " …"
	}
	r.println("# " + s)
}

func (r *recorder) println(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintln(r.w, line)
}

func runMain(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	bin := fs.String("bin", "bin", "directory of nfslock and nfslockfs")
	peers := fs.String("peers", "bench/peers", "directory of the peer workers")
	only := fs.String("only", "", "measure only the tools whose names match this regexp")
	skip := fs.String("skip", "", "leave out these parts (comma-separated: cycle,contend,spread,handoff,crosshost,scale)")
	quick := fs.Bool("quick", false, "a few samples of each part, to check the harness: the numbers mean nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sz := fullSizes
	if *quick {
		sz = quickSizes
	}
	onlyRE, err := regexp.Compile(*only)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "lockbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	s := &setup{self: self, bin: abs(*bin), peers: abs(*peers), work: work, scratch: filepath.Join(work, "notes")}
	if err := os.MkdirAll(s.scratch, 0o755); err != nil {
		return err
	}
	rec := &recorder{w: stdout}
	started := time.Now()
	rec.println(fmt.Sprintf("goos: %s\ngoarch: %s\npkg: lockbench", runtime.GOOS, runtime.GOARCH))
	rec.note("date: %s", started.UTC().Format("2006-01-02 15:04 MST"))
	rec.note("machine: %d CPUs, Linux %s, %s; lock directories on %s", runtime.NumCPU(), firstLine("/proc/sys/kernel/osrelease"),
		runtime.Version(), output("stat", "-f", "-c", "%T", work))
	rec.note("load average before (1, 5, 15 min): %s", loadavg())

	var d *daemon
	if d, err = startDaemon(filepath.Join(s.bin, "nfslockfs"), filepath.Join(work, "backing"), filepath.Join(work, "mnt")); err != nil {
		rec.note("no nfslockfs mount, its rows are missing: %v", err)
	} else {
		defer d.stop()
		s.mnt = d.mnt
	}
	if noop, err := mountNoop(filepath.Join(work, "noop")); err != nil {
		rec.note("no no-op FUSE mount, its row is missing: %v", err)
	} else {
		defer noop.Unmount()
		s.noop = filepath.Join(work, "noop", noopFile)
	}
	var tools []*tool
	for _, t := range s.tools() {
		if onlyRE.MatchString(t.name) {
			rec.note("tool %s: %s | %s", t.name, version(t.pkg), t.usage)
			tools = append(tools, t)
		}
	}
	skipped := map[string]bool{}
	for _, part := range strings.Split(*skip, ",") {
		skipped[part] = true
	}
	each := func(part string, bit int, measure func(*tool) error) {
		if skipped[part] {
			return
		}
		for _, t := range tools {
			if t.parts&bit != 0 {
				progress("%s: %s", part, t.name)
				if err := measure(t); err != nil {
					rec.note("%s of %s stopped: %v", part, t.name, err)
				}
			}
		}
	}
	each("cycle", cycle, func(t *tool) error { return measureCycle(rec, t, sz.runs, sz.runTime) })
	each("contend", contend, func(t *tool) error {
		return measureContention(rec, t, 1, sz.contenders, sz.contention, s.scratch)
	})
	each("spread", spread, func(t *tool) error {
		return measureContention(rec, t, sz.spreadLocks, sz.contenders, sz.contention, s.scratch)
	})
	var slow []*tool // tools that sleep seconds wait together, after the others
	each("handoff", handoff, func(t *tool) error {
		if t.slow {
			slow = append(slow, t)
			return nil
		}
		return measureHandoffs(rec, t, sz.handoffs, 1)
	})
	var wg sync.WaitGroup
	for _, t := range slow {
		if sz.slowPairs > 0 {
			wg.Go(func() {
				if err := measureHandoffs(rec, t, sz.handoffs, sz.slowPairs); err != nil {
					rec.note("handoff of %s stopped: %v", t.name, err)
				}
			})
		}
	}
	wg.Wait()
	if !skipped["crosshost"] {
		progress("crosshost")
		if err := measureCrossHost(rec, s, sz); err != nil {
			rec.note("crosshost stopped: %v", err)
		}
	}
	if !skipped["scale"] && d != nil {
		progress("scale")
		if err := measureScale(rec, d, s.goWorker("open"), sz.heldLocks, sz.queuedWaiters); err != nil {
			rec.note("scale stopped: %v", err)
		}
	}
	rec.note("load average after: %s", loadavg())
	rec.note("the run took %s", time.Since(started).Round(time.Second))
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

func firstLine(name string) string {
	data, _ := os.ReadFile(name)
	line, _, _ := strings.Cut(string(data), "\n")
	return line
}

func loadavg() string {
	f := strings.Fields(firstLine("/proc/loadavg"))
	return strings.Join(f[:min(3, len(f))], " ")
}

// output is a command's output, trimmed, or "?".
func output(argv ...string) string {
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	if err != nil {
		return "?"
	}
	return string(bytes.TrimSpace(out))
}

// version is the installed version of a Debian package ("linux": the
// kernel; "": this tree's commit).
func version(pkg string) string {
	switch pkg {
	case "linux":
		return "Linux " + firstLine("/proc/sys/kernel/osrelease")
	case "":
		return "this tree, " + output("git", "describe", "--always", "--dirty")
	}
	return pkg + " " + output("dpkg-query", "-W", "-f", "${Version}", pkg)
}
