package integration

import (
	"os"
	"testing"
	"time"
)

// soakVar is how long TestClusterSoak runs, as a Go duration (10m, 2h).
// Unset, the soak is skipped: `make soak DURATION=10m` sets it.
const soakVar = "NFSLOCKFS_SOAK"

// TestClusterSoak runs the mutual-exclusion scenario (TestClusterMutualExclusion)
// and then the crash chaos (TestClusterCrashChaos) for half of NFSLOCKFS_SOAK
// each, and reports the critical sections done and the violations found.
func TestClusterSoak(t *testing.T) {
	value := os.Getenv(soakVar)
	if value == "" {
		t.Skipf("set %s=DURATION (make soak DURATION=10m) to soak", soakVar)
	}
	d, err := time.ParseDuration(value)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 10m", soakVar, value)
	}
	limit := d/2 + 5*time.Minute // the run's own bound: stopping and checking take a while
	var exclusion, chaos checkReport
	var kills map[string]int
	t.Run("exclusion", func(t *testing.T) {
		c := newCluster(t, clusterConfig{hosts: 3, daemons: true, limit: limit})
		exclusion = runExclusion(t, c, 0, d/2)
	})
	t.Run("chaos", func(t *testing.T) {
		c := newCluster(t, clusterConfig{hosts: 3, daemons: true, limit: limit})
		chaos, kills = runChaos(t, c, d/2, 15*time.Millisecond)
		checkChaos(t, c, chaos, kills)
	})
	t.Logf("soak %v: exclusion: %d cycles, %d violations; chaos: %d cycles, %d kills, %d violations",
		d, exclusion.cycles, len(exclusion.violations), chaos.cycles, totalKills(kills), len(chaos.violations))
}

// totalKills adds the kills of every role (not those "in section", counted
// twice).
func totalKills(kills map[string]int) int {
	n := 0
	for _, role := range append(workerRoles, "nfslock") {
		n += kills[role]
	}
	return n
}
