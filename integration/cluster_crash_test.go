package integration

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// SPEC §4 and §5: nfslockfs is killed (-9) while a caller of its host holds
// a lock through it and others wait. The waiters' opens fail; the lock stays
// held, because its record names the holder, a live process; restarted,
// the daemon and the other host still see it held. When the holder exits,
// its host cleans the lock up at its next attempt and every host gets it,
// without a person.
func TestClusterDaemonCrash(t *testing.T) {
	c := newCluster(t, clusterConfig{hosts: 2, daemons: true, limit: 2 * time.Minute})
	a, b := c.nodes[0], c.nodes[1]
	lock := filepath.Join(c.export, "lock")

	holder := a.spawn("holder", []string{"bash", "-c", `exec 9>"$MNT/lock"; echo "held $$"; read -r _; echo releasing`}, a.env())
	holderPid := strings.TrimPrefix(holder.expect(t, "held ", 10*time.Second), "held ")
	waiterA := a.spawn("mount waiter", []string{"bash", "-c", `exec 9>"$MNT/lock" && echo got || echo "open failed"`}, a.env())
	cliA := a.spawn("cli waiter", []string{"bash", "-c", `"$NFSLOCK" -w 60 "$EXPORT/lock" echo "cli got"`}, a.env())
	waiterB := b.spawn("mount waiter", []string{"bash", "-c", `exec 9>"$MNT/lock"; echo got; exec 9>&-`}, b.env())
	waiterA.expectQuiet(t, "got", 300*time.Millisecond) // all three are blocked

	a.killDaemon()
	waiterA.expect(t, "open failed", 10*time.Second)
	assertHolder(t, lock, a.name, holderPid)

	a.restartDaemon()
	if out, _ := a.sh(`cat "$MNT/lock"`); !strings.Contains(out, "pid: "+holderPid+"\n") {
		t.Errorf("the restarted nfslockfs shows the lock's holder as:\n%s\nwant pid %s", out, holderPid)
	}
	for _, n := range []*node{a, b} {
		if out, code := n.sh(`timeout 0.5 bash -c 'exec 9>"$MNT/lock"'`); code != 124 {
			t.Errorf("%s: an open through the mount while the holder lives: exit %d, want 124 (still waiting when timed out): %s", n.name, code, out)
		}
	}
	cliA.expectQuiet(t, "cli got", 300*time.Millisecond)
	waiterB.expectQuiet(t, "got", 0)
	assertHolder(t, lock, a.name, holderPid)

	holder.stdin.Close() // the holder exits; its lock is now stale
	holder.expect(t, "releasing", 5*time.Second)
	cliA.expect(t, "cli got", 15*time.Second)
	waiterB.expect(t, "got", 15*time.Second)
	for _, n := range []*node{a, b} {
		if out, code := n.sh(`timeout 10 bash -c 'exec 9>"$MNT/lock"'`); code != 0 {
			t.Errorf("%s: taking the lock through the mount afterwards: exit %d: %s", n.name, code, out)
		}
	}
	if code := cliA.wait(t, 5*time.Second); code != 0 {
		t.Errorf("the cli waiter exited %d:\n%s", code, cliA.out)
	}
	t.Logf("left in the export: %q", c.leftovers())
}

// assertHolder checks that the lock at path is held by process pid of host.
func assertHolder(t *testing.T, path, host, pid string) {
	t.Helper()
	rec, err := nfslock.ReadRecord(path)
	if err != nil || rec.Host != host || strconv.Itoa(rec.Pid) != pid {
		t.Errorf("lock %s: record %+v (%v); want held by pid %s of %s", path, rec, err, pid, host)
	}
}

// SPEC §5: a host that held locks dies. Other hosts cannot judge its
// processes, so they see the locks held by it (status says so) and wait,
// until an operator breaks them with nfslock break --force.
func TestClusterDeadHost(t *testing.T) {
	c := newCluster(t, clusterConfig{hosts: 2, daemons: true, limit: 2 * time.Minute})
	a, b := c.nodes[0], c.nodes[1]

	cliHolder := a.spawn("cli holder", []string{"bash", "-c", `exec "$NFSLOCK" -m "job on a" "$EXPORT/bycli" sh -c 'echo held; exec sleep 600'`}, a.env())
	mountHolder := a.spawn("mount holder", []string{"bash", "-c", `exec 9>"$MNT/bymount"; echo held; exec sleep 600`}, a.env())
	cliHolder.expect(t, "held", 10*time.Second)
	mountHolder.expect(t, "held", 10*time.Second)
	waiterB := b.spawn("mount waiter", []string{"bash", "-c", `exec 9>"$MNT/bymount"; echo got; exec 9>&-`}, b.env())

	// The machine stops at once: nothing on it runs any more, its nfslockfs
	// included. (Killed in one go with its holders, the daemon might still
	// serve their RELEASE, as it would not on a machine that lost power.)
	a.killDaemon()
	if err := a.host.Kill(); err != nil {
		t.Fatal(err)
	}

	out, code := b.sh(`"$NFSLOCK" status --json "$EXPORT/bycli" "$EXPORT/bymount"`)
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, out)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var s cliStatus
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("status --json: %v: %s", err, out)
		}
		if s.State != "remote" || s.Host != a.name {
			t.Errorf("%s seen from %s: state %q, host %q; want remote, %s", s.Path, b.name, s.State, s.Host, a.name)
		}
	}
	if out, _ := b.sh(`"$NFSLOCK" status "$EXPORT/bycli"; cat "$MNT/bycli"`); !strings.Contains(out, "state: remote\n") ||
		!strings.Contains(out, "host: "+a.name+"\n") || !strings.Contains(out, "message: job on a") {
		t.Errorf("status and cat on %s do not name the dead host's holder:\n%s", b.name, out)
	}
	if out, code := b.sh(`"$NFSLOCK" -n "$EXPORT/bycli" true`); code != 1 {
		t.Errorf("nfslock -n on a lock of the dead host: exit %d, want 1: %s", code, out)
	}
	waiterB.expectQuiet(t, "got", 500*time.Millisecond)

	for _, name := range []string{"bycli", "bymount"} {
		out, code := b.sh(`"$NFSLOCK" break --force "$EXPORT/` + name + `"`)
		if code != 0 || !strings.HasPrefix(out, "removed:") || !strings.Contains(out, "host: "+a.name+"\n") {
			t.Errorf("break --force %s: exit %d; want 0 and a report of the removed holder:\n%s", name, code, out)
		}
	}
	waiterB.expect(t, "got", 10*time.Second)
	if out, code := b.sh(`"$NFSLOCK" -n "$EXPORT/bycli" true`); code != 0 {
		t.Errorf("nfslock -n after break --force: exit %d: %s", code, out)
	}
	if code := waiterB.wait(t, 5*time.Second); code != 0 {
		t.Errorf("waiter exited %d:\n%s", code, waiterB.out)
	}
	if left := c.leftovers(); len(left) > 0 {
		t.Errorf("files left in the export: %q", left)
	}
}
