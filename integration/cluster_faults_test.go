package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/faultfs"
	"github.com/nfslockfs/nfslockfs/nfslock"
)

// SPEC §2 step 4 and §5: every LINK reply is lost (the link happens, the
// caller sees EEXIST, as after an NFS retransmission). An acquisition
// still succeeds, at its first attempt, and exactly once: the lock is taken,
// by its taker only, and nothing is left behind. Then every kind of worker
// contends under the same fault.
func TestClusterLostLinkReplies(t *testing.T) {
	c := newCluster(t, clusterConfig{hosts: 2, daemons: true, limit: 2 * time.Minute})
	c.fault.LoseLinkReplies(true)

	lock := filepath.Join(c.export, "single")
	before := c.fault.Counts()
	l, err := nfslock.TryLock(lock)
	counts := c.fault.Counts().Sub(before)
	if err != nil {
		t.Fatalf("TryLock with every LINK reply lost: %v", err)
	}
	t.Logf("one TryLock with every LINK reply lost: %v", counts)
	if rec, err := nfslock.ReadRecord(lock); err != nil || rec.Pid != os.Getpid() {
		t.Errorf("record %+v (%v); want this process's", rec, err)
	}
	if out, code := c.nodes[0].sh(`"$NFSLOCK" -n "$EXPORT/single" true`); code != 1 {
		t.Errorf("another host's nfslock -n on the lock taken: exit %d, want 1: %s", code, out)
	}
	if left := c.leftovers(); !slices.Equal(left, []string{"single", "single.nfs_lock", "single.nfs_readers"}) {
		t.Errorf("export holds %q; want the lock (single.nfs_lock), its second name (single) and its exclusive mark (single.nfs_readers) only", left)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("Unlock: %v", err)
	}

	linksBefore := c.fault.Counts()[faultfs.OpLink]
	const cycles = 25
	c.awaitWorkers(c.startWorkers(exclusiveRoles, "lock", cycles, false), 2*time.Minute)
	r := readCheckLog(t, c.check)
	t.Logf("%d hosts × %d workers with lost LINK replies: %v; %d LINKs, every reply lost",
		len(c.nodes), len(exclusiveRoles), r, c.fault.Counts()[faultfs.OpLink]-linksBefore)
	if want := len(c.nodes) * len(exclusiveRoles) * cycles; r.cycles != want {
		t.Errorf("%d critical sections logged, want %d", r.cycles, want)
	}
	for _, e := range r.errors {
		t.Errorf("error: %s", e)
	}
	for _, v := range r.violations {
		t.Errorf("violation: %s", v)
	}
	if left := c.leftoversOnceReleased(); len(left) > 0 {
		t.Errorf("files left in the export: %q", left)
	}
}

// stormOps are the requests that the fault storms fail: every one the lock
// protocol makes.
var stormOps = []faultfs.Op{faultfs.OpLookup, faultfs.OpGetattr, faultfs.OpCreate, faultfs.OpOpen,
	faultfs.OpRead, faultfs.OpWrite, faultfs.OpFlush, faultfs.OpLink, faultfs.OpUnlink, faultfs.OpRename,
	faultfs.OpSetattr}

// SPEC §5: the export fails requests at random with ESTALE, then with EIO,
// then stops answering for two seconds, while every kind of worker on three
// hosts contends for the lock. Callers get errors or wait; no two ever hold
// the lock; once the faults stop, work goes on, every worker ends when told
// and every host can take the lock.
func TestClusterFaultStorms(t *testing.T) {
	c := newCluster(t, clusterConfig{hosts: 3, daemons: true, limit: 3 * time.Minute})
	workers := c.startWorkers(exclusiveRoles, "lock", 0, false)
	cycles := func() int { return readCheckLog(t, c.check).cycles }
	phase := func(name string, d time.Duration) {
		before, errorsBefore := cycles(), len(readCheckLog(t, c.check).errors)
		time.Sleep(d)
		r := readCheckLog(t, c.check)
		t.Logf("%-22s %5v: %4d cycles, %4d errors", name, d, r.cycles-before, len(r.errors)-errorsBefore)
	}

	phase("calm", 2*time.Second)
	for _, op := range stormOps {
		c.fault.FailRandomly(op, syscall.ESTALE, 0.3) // the kernel retries once: ~9% surface
	}
	phase("ESTALE storm (p=0.3)", 4*time.Second)
	c.fault.ClearFaults()
	for _, op := range stormOps {
		c.fault.FailRandomly(op, syscall.EIO, 0.05)
	}
	phase("EIO storm (p=0.05)", 4*time.Second)
	c.fault.ClearFaults()
	phase("calm", time.Second)

	c.fault.Hang()
	probe := c.nodes[0].spawn("probe", []string{"bash", "-c", `"$NFSLOCK" -w 30 "$EXPORT/probe" echo probed; cat "$MNT/probe"; echo done`}, c.nodes[0].env())
	before := cycles()
	phase("outage", 2*time.Second)
	if n := cycles() - before; n > 1 { // one section may have been under way
		t.Errorf("%d critical sections during the outage", n)
	}
	probe.expectQuiet(t, "probed", 0)
	c.fault.Resume()
	probe.expect(t, "probed", 15*time.Second)
	probe.expect(t, "done", 15*time.Second)

	before = cycles()
	phase("calm after the faults", 3*time.Second)
	if cycles() == before {
		t.Fatalf("no critical section in the 3s after the faults stopped: stuck; %s", c.describeLock("lock"))
	}
	c.stopWorkers(workers, time.Minute)
	c.sweep("lock", time.Minute)

	r := readCheckLog(t, c.check)
	t.Logf("%v", r)
	for _, v := range r.violations {
		t.Errorf("violation: %s", v)
	}
	if len(r.errors) == 0 {
		t.Errorf("no caller saw an error: the storms did not reach them")
	}
	kinds := map[string]int{}
	for _, e := range r.errors {
		kinds[errorKind(e)]++
	}
	t.Logf("errors callers saw, by kind: %s", sortedCounts(kinds))
	if left := c.leftovers(); slices.Contains(left, "lock.nfs_lock") {
		t.Errorf("the lock is held after the run: export holds %s", describeFiles(left))
	} else {
		t.Logf("left in the export: %s (attempt files whose removal failed are garbage, removed once 5 minutes old)", describeFiles(left))
	}
}

// describeLock says who holds the lock name, as the export shows it.
func (c *cluster) describeLock(name string) string {
	h, err := nfslock.Inspect(filepath.Join(c.export, name))
	if err != nil {
		return fmt.Sprintf("lock %s: %v", name, err)
	}
	return fmt.Sprintf("lock %s held by %+v (%v), since %v", name, h.Record, h.State, h.Since.Format(time.StampMicro))
}

// errorKind shortens an "error ID TEXT" log line to the worker's role and
// the error's last words.
func errorKind(line string) string {
	f := strings.Fields(line)
	if len(f) < 3 {
		return line
	}
	text := f[len(f)-1]
	if i := strings.LastIndex(text, ":_"); i >= 0 {
		text = text[i+2:]
	}
	return roleOf(f[1]) + ":" + text
}

// The NFS round trips of one uncontended acquire and release, counted by
// faultfs for the library, the CLI and the mount (see docs/benchmarks.md).
func TestClusterRoundTripsPerLockCycle(t *testing.T) {
	c := newCluster(t, clusterConfig{hosts: 1, daemons: true, limit: time.Minute})
	n := c.nodes[0]
	for _, way := range []struct {
		name  string
		cycle func()
	}{
		{"library: TryLock + Unlock", func() {
			l, err := nfslock.TryLock(filepath.Join(c.export, "lib"))
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
		}},
		{"CLI: nfslock -n PATH true", func() {
			if out, code := n.sh(`"$NFSLOCK" -n "$EXPORT/cli" true`); code != 0 {
				t.Fatalf("nfslock: exit %d: %s", code, out)
			}
		}},
		{"mount: open(O_WRONLY) + close", func() {
			if out, code := n.sh(`exec 9>"$MNT/mnt"; exec 9>&-`); code != 0 {
				t.Fatalf("open through the mount: exit %d: %s", code, out)
			}
		}},
	} {
		way.cycle() // once, so that nothing is done for the first time only
		c.awaitQuiet()
		before := c.fault.Counts()
		way.cycle()
		c.awaitQuiet() // nfslockfs releases after close returns
		t.Logf("%-32s %v", way.name, c.fault.Counts().Sub(before))
	}
	if left := c.leftovers(); len(left) > 0 {
		t.Errorf("files left in the export: %q", left)
	}
}

// awaitQuiet waits until the export has served no request for 200 ms.
func (c *cluster) awaitQuiet() {
	c.t.Helper()
	last, quietSince := c.fault.Counts().Total(), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Since(quietSince) < 200*time.Millisecond; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.t.Fatalf("the export is still busy after 10s")
		}
		if now := c.fault.Counts().Total(); now != last {
			last, quietSince = now, time.Now()
		}
	}
}

// A TryLock whose link made the lock but whose look for shared holders
// failed (its mark refused by the readers' directory, here one left empty
// by a reader that died, and EIO listing that directory) releases the lock
// and returns the error; when that release fails too, retries included (the server still failing), the lock
// stays on disk in this process's name. It must not stay there for good:
// this process's next attempt removes it and takes the lock, rather than
// taking it for a lock of its own (a hang: every later TryLock said "held
// by this process", every Acquire waited for itself, and every other host
// waited until the process exited). Found on real NFS, a soft mount during
// a server outage (TestRealNFS/v3/server-restart).
func TestClusterFailedReaderCheckLeavesNoOrphan(t *testing.T) {
	c := newCluster(t, clusterConfig{hosts: 1, limit: time.Minute})
	lock := filepath.Join(c.export, "lock")
	if err := os.Mkdir(lock+nfslock.ReadersDirSuffix, 0o777); err != nil {
		t.Fatal(err)
	}
	c.fault.Fail(faultfs.OpOpendir, syscall.EIO, 2) // the look for shared holders: the lock directory's revalidation, then the readers' directory
	c.fault.Fail(faultfs.OpOpen, syscall.EIO, 3)    // the release's opens of P.nfs_lock: a try and nfslock's two retries
	if _, err := nfslock.TryLock(lock); !errors.Is(err, syscall.EIO) {
		t.Fatalf("TryLock with OPENDIR and OPEN failing: %v; want an error matching EIO", err)
	}
	if rec, err := nfslock.ReadRecord(lock); err != nil || rec.Pid != os.Getpid() {
		t.Fatalf("the lock after the failed TryLock: %+v, %v; want it left in this process's name (else the test proves nothing)", rec, err)
	}
	l, err := nfslock.TryLock(lock)
	if err != nil {
		t.Fatalf("TryLock once the server answers again: %v; want the lock", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	l, err = nfslock.Acquire(ctx, lock)
	if err != nil {
		t.Fatalf("Acquire afterwards: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if left := c.leftovers(); len(left) > 0 {
		t.Errorf("files left in the export: %q", left)
	}
}
