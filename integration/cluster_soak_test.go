package integration

import (
	"os"
	"testing"
	"time"
)

// soakVar is how long TestClusterSoak runs, as a Go duration (10m, 2h).
// Unset, the soak is skipped: `make soak DURATION=10m` sets it.
const soakVar = "NFSLOCKFS_SOAK"

// TestClusterSoak runs, for a quarter of NFSLOCKFS_SOAK each, the
// mutual-exclusion scenario (TestClusterMutualExclusion), the crash chaos
// (TestClusterCrashChaos), readers and writers (TestClusterReadersWriters)
// and their crash chaos (TestClusterReadersWritersChaos), and reports the
// critical sections done and the violations found.
func TestClusterSoak(t *testing.T) {
	value := os.Getenv(soakVar)
	if value == "" {
		t.Skipf("set %s=DURATION (make soak DURATION=10m) to soak", soakVar)
	}
	d, err := time.ParseDuration(value)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration such as 10m", soakVar, value)
	}
	part := d / 4
	limit := part + 5*time.Minute // each run's own bound: stopping and checking take a while
	var exclusion, chaos, rw, rwChaos checkReport
	var kills, rwKills map[string]int
	t.Run("exclusion", func(t *testing.T) {
		c := newCluster(t, clusterConfig{hosts: 3, daemons: true, limit: limit})
		exclusion = runExclusionOf(t, c, exclusiveRoles, 0, part)
	})
	t.Run("chaos", func(t *testing.T) {
		c := newCluster(t, clusterConfig{hosts: 3, daemons: true, limit: limit})
		chaos, kills = runChaosOf(t, c, exclusiveRoles, part, 15*time.Millisecond)
		checkChaos(t, c, chaos, kills, true)
	})
	t.Run("readers-writers", func(t *testing.T) {
		c := newCluster(t, clusterConfig{hosts: 3, daemons: true, limit: limit, hold: readerWriterHold})
		rw = runReadersWriters(t, c, 0, part)
	})
	t.Run("readers-writers-chaos", func(t *testing.T) {
		c := newCluster(t, clusterConfig{hosts: 3, daemons: true, limit: limit, hold: readerWriterHold})
		rwChaos, rwKills = runChaosOf(t, c, readerWriterRoles, part, readerWriterKillEvery)
		checkChaos(t, c, rwChaos, rwKills, true)
		// Readers of two hosts inside together under kills every 25 ms: a
		// part under a minute may see none (one 30 s part of three did).
		checkReaderWriterChaos(t, rwChaos, rwKills, part >= time.Minute)
	})
	t.Logf("soak %v: exclusion: %d cycles, %d violations; chaos: %d cycles, %d kills, %d violations; "+
		"readers-writers: %d cycles (%d shared, %d beside another host's reader), %d violations; "+
		"their chaos: %d cycles (%d shared, %d beside another host's reader), %d kills, %d violations",
		d, exclusion.cycles, len(exclusion.violations), chaos.cycles, totalKills(kills, exclusiveRoles), len(chaos.violations),
		rw.cycles, rw.shared, rw.overlaps, len(rw.violations),
		rwChaos.cycles, rwChaos.shared, rwChaos.overlaps, totalKills(rwKills, readerWriterRoles), len(rwChaos.violations))
}

// totalKills adds the kills of every role and lock command (not those "in
// section", counted twice).
func totalKills(kills map[string]int, roles []string) int {
	n := 0
	for _, role := range append(roles, "nfslock", "flock") {
		n += kills[role]
	}
	return n
}
