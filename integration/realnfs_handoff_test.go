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
// shares), for the library and the mount, handoffs rounds in each
// direction; then, with 5 ms added to every packet on the guest's loopback
// (netem, see addLoopbackDelay), delayed rounds in each direction
// (docs/benchmarks.md, "Cross-host handoff on real NFS"). The waiter has
// waited settle when the holder releases: long enough for its polls to
// reach their longest interval.
func realNFSHandoffs(t *testing.T, vers string, handoffs, delayed int) {
	const (
		settle = 300 * time.Millisecond
		bound  = 90 * time.Second // more than a minute of attribute caching
	)
	c := newCluster(t, clusterConfig{hosts: 2, daemons: true, limit: 8 * time.Minute, nfsVers: vers})
	ways := []struct{ name, tool, role string }{{"library", "library", "lib"}, {"mount", "open", "mount"}}
	workers := make([][]*hostProc, len(ways)) // by way, by host
	for i, way := range ways {
		for _, n := range c.nodes {
			argv := []string{filepath.Join(binDir, "lockbench"), "worker", "-tool", way.tool, "-lock", n.lockPath(way.role, "handoff-"+way.tool)}
			workers[i] = append(workers[i], n.spawn("lockbench-"+way.tool, argv, n.env()))
		}
	}
	measure := func(rounds int, condition string) {
		for i, way := range ways {
			var took []time.Duration
			holder, waiter := workers[i][0], workers[i][1]
			holder.lockbench(t, "lock", bound)
			for range 2 * rounds {
				fmt.Fprintln(waiter.stdin, "lock")
				time.Sleep(settle)
				released := holder.lockbench(t, "unlock", bound)[0]
				acquired := waiter.lockbench(t, "", bound)[0]
				took = append(took, time.Duration(acquired-released))
				holder, waiter = waiter, holder
			}
			holder.lockbench(t, "unlock", bound)
			slices.Sort(took)
			t.Logf("NFSv%s %-7s cross-host handoff%s, %d handoffs: median %v, p90 %v, max %v, min %v", vers, way.name, condition, len(took),
				took[len(took)/2].Round(time.Millisecond), took[len(took)*9/10].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), took[0].Round(time.Millisecond))
		}
	}
	measure(handoffs, "")
	addLoopbackDelay(t)
	measure(delayed, " with 5 ms each way on lo")
	for _, ws := range workers {
		for _, p := range ws {
			p.stdin.Close()
		}
	}
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
