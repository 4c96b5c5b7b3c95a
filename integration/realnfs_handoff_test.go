package integration

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// realNFSHandoffs measures, on real NFS with default mount options
// (attribute and dentry caches on), how long a release on one host takes to
// reach a waiter on another: from just before the holder releases to the
// waiter's acquire returning (CLOCK_MONOTONIC, which every simulated host
// shares), for the library, the mount and Core's retry policy (lockbench's
// simulation of it), handoffs rounds in each direction; then, with 5 ms
// added to every packet on the guest's loopback (netem, see
// addLoopbackDelay), delayed rounds in each direction (docs/benchmarks.md,
// "Cross-host handoff on real NFS"). The waiter has waited settle when the
// holder releases: long enough for its polls to reach their longest
// interval. In the first round, in each direction, it waits longer, and the
// requests its host's client mount sends meanwhile are counted: what one
// waiter costs the server per second of waiting.
func realNFSHandoffs(t *testing.T, vers string, handoffs, delayed int) {
	const (
		settle = 300 * time.Millisecond
		bound  = 90 * time.Second // more than a minute of attribute caching
	)
	c := newCluster(t, clusterConfig{hosts: 2, daemons: true, limit: 8 * time.Minute, nfsVers: vers})
	ways := []struct{ name, tool, role string }{
		{"library", "library", "lib"}, {"mount", "open", "mount"}, {"Core v2 (simulated)", "coresim", "core"},
	}
	workers := make([][]*hostProc, len(ways)) // by way, by host
	for i, way := range ways {
		for _, n := range c.nodes {
			argv := []string{filepath.Join(binDir, "lockbench"), "worker", "-tool", way.tool, "-lock", n.lockPath(way.role, "handoff-"+way.tool)}
			workers[i] = append(workers[i], n.spawn("lockbench-"+way.tool, argv, n.env()))
		}
	}
	measure := func(rounds int, condition string, count bool) {
		for i, way := range ways {
			var (
				took   []time.Duration
				rate   waitRequests
				holder = 0 // the index of the host holding
				ws     = workers[i]
			)
			ws[holder].lockbench(t, "lock", bound)
			for r := range 2 * rounds {
				waiter := 1 - holder
				fmt.Fprintln(ws[waiter].stdin, "lock")
				if count && r < 2 {
					rate.count(c.nodes[waiter])
				} else {
					time.Sleep(settle)
				}
				released := ws[holder].lockbench(t, "unlock", bound)[0]
				acquired := ws[waiter].lockbench(t, "", bound)[0]
				took = append(took, time.Duration(acquired-released))
				holder = waiter
			}
			ws[holder].lockbench(t, "unlock", bound)
			slices.Sort(took)
			t.Logf("NFSv%s %-19s cross-host handoff%s, %d handoffs: median %v, p90 %v, max %v, min %v%s", vers, way.name, condition, len(took),
				took[len(took)/2].Round(time.Millisecond), took[len(took)*9/10].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), took[0].Round(time.Millisecond), rate)
		}
	}
	measure(handoffs, "", true)
	addLoopbackDelay(t)
	measure(delayed, " with 5 ms each way on lo", false)
	for _, ws := range workers {
		for _, p := range ws {
			p.stdin.Close()
		}
	}
}

// waitRequests adds up the requests that waiters' hosts sent while they
// waited, by operation, and for how long.
type waitRequests struct {
	counts map[string]int
	waited time.Duration
}

// count lets a waiter of n, which has just asked for the lock, wait for
// waitCountLead and then counts the requests n's client mount sends over
// waitCountWindow. Nothing but the waiter may use the export from n
// meanwhile: in realNFSHandoffs, n's other workers, and its daemon unless
// that is the waiter, are idle.
func (w *waitRequests) count(n *node) {
	time.Sleep(waitCountLead)
	before, start := n.mountStats(), time.Now()
	time.Sleep(waitCountWindow)
	after, end := n.mountStats(), time.Now()
	if w.counts == nil {
		w.counts = map[string]int{}
	}
	for op, v := range diffCounts(after, before) {
		w.counts[op] += v
	}
	w.waited += end.Sub(start)
}

const (
	// waitCountLead is more than a waiter needs to make its first attempt
	// and reach its longest poll interval.
	waitCountLead = 500 * time.Millisecond
	// waitCountWindow is long enough to hold several of every periodic
	// thing a waiter does (the library's dead-reader sweep: once a second).
	waitCountWindow = 3 * time.Second
)

// String formats the waiters' requests per second of waiting, by operation,
// as a clause of a log line; "" if none were counted.
func (w waitRequests) String() string {
	if w.waited == 0 {
		return ""
	}
	return fmt.Sprintf("; the waiter's host sent %.1f requests/s while it waited (%s in %v)",
		float64(sumCounts(w.counts))/w.waited.Seconds(), formatCounts(w.counts), w.waited.Round(100*time.Millisecond))
}

// lockbench sends cmd (unless "") to p, a lockbench worker, and returns the
// times of its answer, "ok TIME..." (see lockbench's worker), which must
// come within d.
func (p *hostProc) lockbench(t *testing.T, cmd string, d time.Duration) []int64 {
	t.Helper()
	if cmd != "" {
		fmt.Fprintln(p.stdin, cmd)
	}
	f := strings.Fields(p.expect(t, "ok", d))
	if f[0] != "ok" {
		t.Fatalf("%s: %q", p.name, f)
	}
	var times []int64
	for _, s := range f[1:] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", p.name, f, err)
		}
		times = append(times, v)
	}
	return times
}
