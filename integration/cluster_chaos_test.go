package integration

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// SPEC §5, crashes: while the workers of TestClusterMutualExclusion run, a
// driver kill -9s a random one every few milliseconds, holders and waiters
// alike: shells and Go programs blocked in or holding an open of the mount,
// flock(1) and the shells it runs, library users, nfslock and the commands
// it runs. Killed workers are
// started again. Afterwards the checker must find no overlap and no record
// of a dead process surviving a second attempt of its host, every worker
// must end once told to, and one more attempt per host must find the lock
// free or clean it up, without help.
func TestClusterCrashChaos(t *testing.T) {
	c := newCluster(t, clusterConfig{hosts: 3, daemons: true, limit: 3 * time.Minute})
	r, kills := runChaosOf(t, c, exclusiveRoles, 20*time.Second, 15*time.Millisecond)
	checkChaos(t, c, r, kills, true)
}

// runChaos runs supervised workers of every role of workerRoles on every host for d while
// killing one every `every` (randomized), then stops the workers, sweeps the
// lock once per host (see cluster.sweep) and returns the log's report and
// the kills by victim role.
func runChaos(t *testing.T, c *cluster, d, every time.Duration) (checkReport, map[string]int) {
	t.Helper()
	return runChaosOf(t, c, workerRoles, d, every)
}

// runChaosOf is runChaos with workers of the given roles.
func runChaosOf(t *testing.T, c *cluster, roles []string, d, every time.Duration) (checkReport, map[string]int) {
	t.Helper()
	killers := c.startKillers()
	workers := c.startWorkers(roles, "lock", 0, true)
	start := time.Now()
	kills := c.killRandomly(killers, start.Add(d), every)
	if err := os.WriteFile(filepath.Join(c.check, checkStop), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	stopping := time.Now()
	c.sweep("lock", time.Minute)
	c.awaitWorkers(workers, time.Minute)
	t.Logf("workers ended and the lock was swept %v after the stop", time.Since(stopping).Round(time.Millisecond))
	r := readCheckLog(t, c.check)
	t.Logf("chaos for %v, a kill every ~%v: %v; kills: %s; whole run %v",
		d, every, r, sortedCounts(kills), time.Since(start).Round(time.Millisecond))
	return r, kills
}

// checkChaos fails t for what must not happen in a chaos run, and for a
// run that proves little: no section, no kill of nfslock, or (when
// requireDeadFound) no holder killed inside its section and followed by
// another. The emulated guest's runs are too short for the last to be
// sure: there it is only logged.
func checkChaos(t *testing.T, c *cluster, r checkReport, kills map[string]int, requireDeadFound bool) {
	t.Helper()
	for _, v := range r.violations {
		t.Errorf("violation: %s", v)
	}
	for _, e := range r.errors {
		// nfslock exits as its COMMAND did: 137 when either was killed.
		if !strings.HasSuffix(e, "exit-status-137") {
			t.Errorf("error not caused by a kill: %s", e)
		}
	}
	if r.cycles == 0 || r.foundDead == 0 && requireDeadFound || kills["nfslock"] == 0 {
		t.Errorf("the run proves little: %v, kills: %s", r, sortedCounts(kills))
	}
	left := c.leftovers()
	if slices.ContainsFunc(left, func(name string) bool {
		return name == "lock.nfs_lock" || strings.HasSuffix(name, nfslock.ReaderSuffix)
	}) {
		t.Errorf("the lock is held after every host took it once more: export holds %s", describeFiles(left))
	}
	t.Logf("left in the export: %s (attempt files of killed acquirers are garbage, removed once 5 minutes old)", describeFiles(left))
	for _, n := range c.nodes {
		if n.daemon != nil && n.daemon.proc.cmd.ProcessState != nil {
			t.Errorf("%s: nfslockfs died during the run:\n%s", n.name, n.daemon.proc.out)
		}
	}
}

// killerScript runs in a host and kill -9s each process it is told of
// ("PID STARTTIME" lines) if it is still the process that registered as a
// victim (its start time matches: pids are reused).
//
// Killing flock(1) while the command it started holds the lock (through
// the open file it inherited) leaves the lock's record naming a dead
// process until the mount renames it to the command; the daemon's vouch
// keeps the lock held for the host's other processes meanwhile (see
// "Vouches" in docs/design.md). Before the vouch, a chaos run at a load of
// 20 let a writer of another host in beside such a command.
const killerScript = `while read -r pid want; do
	read -r st 2>/dev/null </proc/$pid/stat || continue
	set -- $st
	[ "${22}" = "$want" ] && kill -9 "$pid"
done`

// startKillers starts a killer in every host, by host name.
func (c *cluster) startKillers() map[string]io.Writer {
	killers := map[string]io.Writer{}
	for _, n := range c.nodes {
		killers[n.name] = n.spawn("killer", []string{"bash", "-c", killerScript}, n.env()).stdin
	}
	return killers
}

// killRandomly kills a random registered victim (CHECK/victims/HOST:PID:ROLE,
// holding the victim's start time) every `every`, randomized, until the
// deadline, and returns the kills by role. A victim killed inside the
// critical section counts under "ROLE in section" too.
func (c *cluster) killRandomly(killers map[string]io.Writer, deadline time.Time, every time.Duration) map[string]int {
	kills := map[string]int{}
	dir := filepath.Join(c.check, checkVictims)
	for time.Now().Before(deadline) && c.ctx.Err() == nil {
		time.Sleep(every/2 + rand.N(every))
		entries, _ := os.ReadDir(dir)
		if len(entries) == 0 {
			continue
		}
		name := entries[rand.N(len(entries))].Name()
		f := strings.Split(name, ":")
		start, err := os.ReadFile(filepath.Join(dir, name))
		if len(f) != 3 || err != nil || killers[f[0]] == nil {
			continue // gone meanwhile
		}
		inside, _ := insideNow(c.check)
		fmt.Fprintf(killers[f[0]], "%s %s\n", f[1], strings.TrimSpace(string(start)))
		os.Remove(filepath.Join(dir, name))
		kills[f[2]]++
		for id := range inside {
			if strings.HasPrefix(id, f[0]+":"+f[1]+":") {
				kills[f[2]+" in section"]++
			}
		}
	}
	return kills
}

// describeFiles lists file names for a log, counting attempt files rather
// than naming each.
func describeFiles(names []string) string {
	var others []string
	attempts := 0
	for _, name := range names {
		if strings.HasSuffix(name, nfslock.AttemptSuffix) {
			attempts++
		} else {
			others = append(others, name)
		}
	}
	return fmt.Sprintf("%d attempt files and %q", attempts, others)
}

// sortedCounts formats counts for logs.
func sortedCounts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
