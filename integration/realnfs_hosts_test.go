package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// What one host of a cluster sees of another's locks on real NFS, where
// each host has its own client caches.

// realNFSAcrossHosts runs the scenarios of this file, as subtests, in one
// cluster of two hosts (a cluster costs the emulated guest seconds to set
// up and tear down). Each uses lock names of its own; the record change,
// whose holder keeps its lock to the end, comes last.
func realNFSAcrossHosts(t *testing.T, vers string) {
	c := newCluster(t, clusterConfig{hosts: 2, daemons: true, limit: 4 * time.Minute, nfsVers: vers})
	parent := c.t
	for _, s := range []struct {
		name string
		run  func(*testing.T, *cluster)
	}{{"silly-rename", realNFSSillyRename}, {"stale-cleanup", realNFSStaleAcrossHosts}, {"record-change", realNFSRecordChanges}} {
		t.Run(s.name, func(t *testing.T) {
			c.t = t // what the part starts ends with it
			defer func() { c.t = parent }()
			s.run(t, c)
		})
	}
}

// realNFSStaleAcrossHosts: a library holder on host A is killed with -9, so
// the lock's record names a dead process of A. Host B cannot judge A's
// processes: it sees the lock held by a remote holder (status, nfslock -n,
// cat through its mount) and its waiters, a library one and one through its
// mount, wait. A's next acquire cleans the lock up (SPEC §3), and B's
// waiters then get it: the library waiter within its poll interval of A's
// release (lockbench's worker times both, CLOCK_MONOTONIC, which the hosts
// share).
func realNFSStaleAcrossHosts(t *testing.T, c *cluster) {
	vers := c.nfsVers
	a, b := c.nodes[0], c.nodes[1]
	lock := filepath.Join(c.export, "stale")
	libWorker := func(n *node, name string) *hostProc {
		return n.spawn(name, []string{filepath.Join(binDir, "lockbench"), "worker", "-tool", "library", "-lock", lock}, n.env())
	}
	request := func(p *hostProc, cmd string, d time.Duration) []int64 { return p.lockbench(t, cmd, d) }
	holder := libWorker(a, "holder")
	request(holder, "lock", time.Minute)
	rec, err := nfslock.ReadRecord(lock)
	if err != nil || rec.Host != a.name {
		t.Fatalf("the lock's record: %+v, %v; want one naming a process of %s", rec, err, a.name)
	}
	holder.cmd.Process.Kill() // its helpers die, and it dies of SIGKILL with them
	holder.wait(t, 10*time.Second)
	if out, _ := a.sh(fmt.Sprintf("kill -0 %d", rec.Pid)); !strings.Contains(out, "No such process") {
		t.Fatalf("%s: the holder, pid %d, is not gone: %s", a.name, rec.Pid, out)
	}

	status := func(n *node) cliStatus {
		t.Helper()
		out, code := n.sh(`"$NFSLOCK" status --json "$EXPORT/stale"`)
		var s cliStatus
		if err := json.Unmarshal([]byte(out), &s); code != 0 || err != nil {
			t.Fatalf("%s: status: exit %d, %v: %s", n.name, code, err, out)
		}
		return s
	}
	if s := status(b); s.State != "remote" || s.Host != a.name || s.Pid != rec.Pid {
		t.Errorf("%s sees the lock of %s's dead process as %q, host %q, pid %d; want remote, %s, %d", b.name, a.name, s.State, s.Host, s.Pid, a.name, rec.Pid)
	}
	if s := status(a); s.State != "dead" {
		t.Errorf("%s sees the lock of its own dead process as %q, want dead", a.name, s.State)
	}
	if out, code := b.sh(`"$NFSLOCK" -n "$EXPORT/stale" true`); code != 1 {
		t.Errorf("%s: nfslock -n on the lock of %s's dead process: exit %d, want 1 (held): %s", b.name, a.name, code, out)
	}
	if out, _ := b.sh(`cat "$MNT/stale"`); !strings.Contains(out, "host: "+a.name+"\n") {
		t.Errorf("%s: cat through the mount does not name %s:\n%s", b.name, a.name, out)
	}
	waiter := libWorker(b, "waiter")
	fmt.Fprintln(waiter.stdin, "lock")
	mountWaiter := b.spawn("mount waiter", []string{"bash", "-c", `exec 9>"$MNT/stale" && echo got`}, b.env())
	waiter.expectQuiet(t, "ok", time.Second) // B judges no process of A: its waiters wait
	mountWaiter.expectQuiet(t, "got", 0)

	cleaner := libWorker(a, "cleaner")
	times := request(cleaner, "lock", time.Minute) // ACQUIRED STARTED
	cleanup := time.Duration(times[0] - times[1])
	released := request(cleaner, "unlock", 10*time.Second)[0]
	acquired := request(waiter, "", 30*time.Second)[0]
	request(waiter, "unlock", 10*time.Second)
	mountWaiter.expect(t, "got", 30*time.Second)
	if code := mountWaiter.wait(t, 10*time.Second); code != 0 {
		t.Errorf("%s: the mount waiter exited %d:\n%s", b.name, code, mountWaiter.out)
	}
	t.Logf("NFSv%s: %s's acquire cleaned up the lock of its dead process and took it in %v; %s's library waiter had it %v after its release",
		vers, a.name, cleanup.Round(time.Millisecond), b.name, time.Duration(acquired-released).Round(time.Millisecond))
	for _, p := range []*hostProc{cleaner, waiter} {
		p.stdin.Close()
	}
	// The mount waiter's lock goes when the daemon gets the kernel's
	// RELEASE, after the waiter's shell has exited: slow in the emulated
	// guest (once more than the moment this check took).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left := c.leftovers()
		if !slices.Contains(left, "stale.nfs_lock") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the lock is held 10 s after its last holder exited: %q", left)
			break
		}
	}
}

// realNFSRecordChanges: a holder on host A changes its message by writing
// through its mount (the library's SetMessage: a new record renamed over the
// old one), rounds times. Host B polls the lock three ways, reading the
// whole record at each poll, every 20 ms: through its own mount (bash's
// read, as cat reads it), through the library (ReadRecord, in a process
// that polls) and the record file itself through its NFS mount. No read
// that began more than an attribute-cache period (acregmin, 3 s by default)
// after the write returned may show the old message; how long each way took
// to show the new one is logged (docs/testing.md says why it is so).
func realNFSRecordChanges(t *testing.T, c *cluster) {
	const rounds = 4
	vers := c.nfsVers
	a, b := c.nodes[0], c.nodes[1]
	holder := a.spawn("holder", []string{"bash", "-c", `exec 9>"$MNT/rec" || exit
echo held
while read -r msg; do
	t0=$EPOCHREALTIME
	printf '%s\n' "$msg" >&9 || echo "write failed"
	echo "wrote $t0 $EPOCHREALTIME"
done`}, a.env())
	holder.expect(t, "held", 30*time.Second)
	// A poller prints "saw PREV START END RECORD" whenever what it reads
	// changes: when the poll that read it started and ended, and when the
	// poll before it, which read the old record, started. It waits between
	// polls with read -t on its stdin, which nothing writes.
	const poller = `last= prev=0
while :; do
	start=$EPOCHREALTIME
	case $WAY in
	mount) IFS= read -r -d '' x <"$MNT/rec" ;;
	file) IFS= read -r -d '' x <"$EXPORT/rec.nfs_lock" ;;
	esac
	if [[ $x != "$last" ]]; then echo "saw $prev $start $EPOCHREALTIME ${x//$'\n'/ }"; last=$x; fi
	prev=$start
	read -r -t 0.02 _; (($? > 128)) || exit 0
done`
	ways := []string{"mount", "library", "file"}
	pollers := map[string]*hostProc{}
	for _, way := range ways {
		argv, env := []string{"bash", "-c", poller}, b.env("WAY="+way)
		if way == "library" {
			argv, env = b.realNFSHelper("record-poller " + filepath.Join(c.export, "rec"))
		}
		pollers[way] = b.spawn("poller "+way, argv, env)
	}
	// took: from the start of the write to the end of the first read that
	// showed it, which includes the emulated guest's slowness; stale: how
	// long after the write returned a read began that still showed the old
	// message (0 if none did), the client's caching alone.
	took, stale := map[string][]time.Duration{}, map[string]time.Duration{}
	for i := range rounds {
		msg := fmt.Sprintf("message-%d-of-%s", i, a.name)
		fmt.Fprintln(holder.stdin, msg)
		w := strings.Fields(holder.expect(t, "wrote ", 10*time.Second))
		began, returned := epochTime(t, w[1]), epochTime(t, w[2])
		for _, way := range ways {
			f := strings.Fields(pollers[way].expect(t, msg, 90*time.Second)) // more than acregmax
			took[way] = append(took[way], epochTime(t, f[3]).Sub(began))
			if prev := epochTime(t, f[1]); prev.After(returned) {
				stale[way] = max(stale[way], prev.Sub(returned))
			}
		}
	}
	for _, way := range ways {
		d := took[way]
		slices.Sort(d)
		t.Logf("NFSv%s %-7s on %s showed a new message of %s's holder after: median %v, max %v (%d changes); a read begun after the write returned showed the old one for %v at most",
			vers, way, b.name, a.name, d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond), len(d), stale[way].Round(time.Millisecond))
		if stale[way] > 3*time.Second {
			t.Errorf("%s on %s showed the old message %v after the write, more than an attribute-cache period (acregmin, 3 s)", way, b.name, stale[way])
		}
	}
}

// epochTime parses a bash $EPOCHREALTIME.
func epochTime(t *testing.T, s string) time.Time {
	t.Helper()
	if s == "0" { // no time: the pollers' "no poll before"
		return time.Time{}
	}
	sec, frac, _ := strings.Cut(s, ".")
	secs, err1 := strconv.ParseInt(sec, 10, 64)
	micros, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil || len(frac) != 6 {
		t.Fatalf("not an $EPOCHREALTIME: %q", s)
	}
	return time.Unix(secs, micros*1000)
}

// realNFSSillyRename: a file of the lock directory, open on host A, is
// removed there, so A's NFS client renames it to .nfsXXXX on the server
// instead (a "silly rename") until it is closed. A's nfslockfs mount must
// not list it, locks in the directory must work as before, and the name
// must not be usable as a lock name (SPEC §1): not through the CLI, not
// through the mount, whose helper files it would alias.
func realNFSSillyRename(t *testing.T, c *cluster) {
	vers := c.nfsVers
	a := c.nodes[0]
	opener := a.spawn("opener", []string{"bash", "-c", `exec 7>"$EXPORT/victim" && echo data >&7 && rm "$EXPORT/victim" || exit
echo removed; read -r _; exit 0`}, a.env())
	opener.expect(t, "removed", 30*time.Second)
	var silly string
	for _, name := range c.leftovers() {
		if strings.HasPrefix(name, ".nfs") {
			silly = name
		}
	}
	if silly == "" {
		t.Fatalf("no .nfsXXXX file on the server after removing a file open on %s: %q", a.name, c.leftovers())
	}
	t.Logf("NFSv%s: the server holds %s for the removed open file", vers, silly)
	out, code := a.sh(`ls -a "$MNT"; exec 9>"$MNT/job" || exit; echo "-- while job is held:"; ls -a "$MNT"; exec 9>&-
"$NFSLOCK" -n "$EXPORT/other" true && echo "-- cli ok"`)
	if code != 0 || !strings.Contains(out, "-- cli ok") {
		t.Fatalf("%s: locks beside %s: exit %d:\n%s", a.name, silly, code, out)
	}
	before, held, _ := strings.Cut(strings.TrimSuffix(out, "-- cli ok\n"), "-- while job is held:\n")
	if strings.Contains(out, ".nfs") || !slices.Contains(strings.Fields(held), "job") || slices.Contains(strings.Fields(before), "job") {
		t.Errorf("%s: the mount's listing with %s on the server, before and while job is held:\n%s", a.name, silly, out)
	}
	// The name is refused as a lock name, and nothing is made of it.
	for _, script := range []string{`"$NFSLOCK" -n "$EXPORT/$SILLY" true`, `exec 9>"$MNT/$SILLY"`} {
		if out, code := a.sh(script, "SILLY="+silly); code == 0 || !strings.Contains(out, silly) && !strings.Contains(out, "nvalid") {
			t.Errorf("%s: %s: exit %d, want a failure naming it:\n%s", a.name, script, code, out)
		}
	}
	if _, err := os.Lstat(filepath.Join(c.backing, silly+nfslock.LockSuffix)); err == nil {
		t.Errorf("%s%s was made", silly, nfslock.LockSuffix)
	}
	opener.stdin.Close() // the last close: A's client removes the .nfsXXXX file
	if code := opener.wait(t, 10*time.Second); code != 0 {
		t.Errorf("the opener exited %d:\n%s", code, opener.out)
	}
	awaitGone(t, filepath.Join(c.backing, silly))
	if left := c.leftovers(); len(left) > 0 {
		t.Errorf("files left in the export: %q", left)
	}
}

// runRecordPoller reads the record of the lock at path every 20 ms with
// nfslock.ReadRecord and prints, whenever what it reads changes, "saw PREV
// START END MESSAGE" as realNFSRecordChanges's pollers do ($EPOCHREALTIME's
// format), until it is killed.
func runRecordPoller(path string) int {
	last, prev := "", "0"
	for {
		start := time.Now()
		rec, err := nfslock.ReadRecord(path)
		got := rec.Message
		if err != nil {
			got = err.Error()
		}
		if got != last {
			fmt.Printf("saw %s %s %s %s\n", prev, epochString(start), epochString(time.Now()), got)
			last = got
		}
		prev = epochString(start)
		time.Sleep(20 * time.Millisecond)
	}
}

// epochString formats t as bash's $EPOCHREALTIME does.
func epochString(t time.Time) string { return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000) }
