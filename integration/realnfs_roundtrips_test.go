package integration

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// realNFSRoundTrips counts, on real NFS, the RPCs that one uncontended
// acquire and release costs the library, the CLI, the mount and Core's v2
// algorithm (lockbench's simulation of it), from the client's
// /proc/self/mountstats (docs/benchmarks.md, "RPCs per lock cycle on real
// NFS"). Each way runs in one host, twice: the second cycle is counted, so
// that the first's lookups of the directory are not.
func realNFSRoundTrips(t *testing.T, vers string) {
	c := newCluster(t, clusterConfig{hosts: 1, daemons: true, limit: 3 * time.Minute, nfsVers: vers})
	n := c.nodes[0]
	lockbench := "printf 'lock\\nunlock\\n' | " + filepath.Join(binDir, "lockbench") + ` worker -lock "$EXPORT/$NAME" -tool `
	ways := []struct{ name, script string }{
		{"library", lockbench + "library"},
		{"CLI", `"$NFSLOCK" "$EXPORT/$NAME" true`},
		{"mount", `exec 9>"$MNT/$NAME"; exec 9>&-`},
		{"Core v2 (simulated)", lockbench + "coresim"},
	}
	for _, way := range ways {
		name := strings.Fields(strings.ToLower(way.name))[0]
		var counts map[string]int
		for range 2 {
			before := n.mountStats()
			if out, code := n.sh(way.script, "NAME="+name); code != 0 {
				t.Fatalf("%s: exit %d: %s", way.name, code, out)
			}
			// The mount releases after the close, when the kernel's RELEASE
			// arrives: wait for it on the server's side, which costs no RPC.
			awaitGone(t, filepath.Join(c.backing, name+".nfs_lock"))
			counts = diffCounts(n.mountStats(), before)
		}
		t.Logf("NFSv%s %-20s %3d RPCs: %s", vers, way.name, sumCounts(counts), formatCounts(counts))
	}
}

// mountStats returns the RPCs that n's NFS client mount of the export has
// sent so far, by operation (the per-op statistics of /proc/self/mountstats).
func (n *node) mountStats() map[string]int {
	n.c.t.Helper()
	counts := map[string]int{}
	for op, s := range n.mountOpStats() {
		if op != "xprt" {
			counts[op] = s.ops
		}
	}
	return counts
}

func diffCounts(after, before map[string]int) map[string]int {
	d := map[string]int{}
	for op, v := range after {
		if v -= before[op]; v != 0 {
			d[op] = v
		}
	}
	return d
}

func sumCounts(m map[string]int) int {
	total := 0
	for _, v := range m {
		total += v
	}
	return total
}

func formatCounts(m map[string]int) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", op, m[op]))
	}
	return strings.Join(parts, " ")
}

// awaitGone waits until name does not exist, at most 10 s.
func awaitGone(t *testing.T, name string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return
		}
	}
	t.Fatalf("%s still exists after 10 s", name)
}
