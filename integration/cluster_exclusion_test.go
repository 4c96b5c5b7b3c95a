package integration

import (
	"testing"
	"time"
)

// SPEC §5, concurrency: processes on several hosts (own hostnames, colliding
// pids) contend for one lock, each taking it the way its kind of program
// does: bash's `exec 9>` and a Go open(2) through the host's nfslockfs,
// the library, and the nfslock CLI. The checker (cluster_checker_test.go)
// proves from the log that no two were ever inside at once; every process
// must finish all its cycles, and nothing may be left in the export.
func TestClusterMutualExclusion(t *testing.T) {
	const cycles = 80 // × 5 roles × 3 hosts: 1,200 sections, as 100 cycles of the 4 roles before flock(1)'s
	c := newCluster(t, clusterConfig{hosts: 3, daemons: true, limit: 5 * time.Minute})
	r := runExclusionOf(t, c, exclusiveRoles, cycles, 0)
	if want := len(c.nodes) * len(exclusiveRoles) * cycles; r.cycles != want {
		t.Errorf("%d critical sections logged, want %d", r.cycles, want)
	}
}

// runExclusion runs a worker of every role of workerRoles on every host, each taking the
// lock cycles times or, with cycles 0, until d has passed, and fails t
// unless every worker finished, the log shows no violation and no error
// (no faults are injected) and the export is left empty.
func runExclusion(t *testing.T, c *cluster, cycles int, d time.Duration) checkReport {
	t.Helper()
	return runExclusionOf(t, c, workerRoles, cycles, d)
}

// runExclusionOf is runExclusion with workers of the given roles.
func runExclusionOf(t *testing.T, c *cluster, roles []string, cycles int, d time.Duration) checkReport {
	t.Helper()
	start := time.Now()
	workers := c.startWorkers(roles, "lock", cycles, false)
	if cycles == 0 {
		time.Sleep(d)
		c.stopWorkers(workers, time.Minute)
	} else {
		c.awaitWorkers(workers, 4*time.Minute)
	}
	r := readCheckLog(t, c.check)
	t.Logf("%d hosts × %d workers: %v in %v", len(c.nodes), len(roles), r, time.Since(start).Round(time.Millisecond))
	for _, e := range r.errors {
		t.Errorf("error without injected faults: %s", e)
	}
	for _, v := range r.violations {
		t.Errorf("violation: %s", v)
	}
	if left := c.leftoversOnceReleased(); len(left) > 0 {
		t.Errorf("files left in the export after every worker released the lock: %q", left)
	}
	return r
}
