package integration

import (
	"strconv"
	"strings"
	"testing"
)

// nfslock pointed at a path under an nfslockfs mount acts on the lock that
// path shows: the one cat shows, held through the mount or by nfslock.
func TestCLIUnderMount(t *testing.T) {
	d := startDaemon(t)
	holder, lines := d.background(t, `exec 9>"$MNT/hb"; echo $$; exec sleep 60`)
	pid, err := strconv.Atoi(<-lines)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := d.shell(t, `cat "$MNT/hb"`); err != nil || !strings.Contains(out, "pid: "+strconv.Itoa(pid)+"\n") {
		t.Fatalf("cat through the mount: %q, %v; want the holder %d", out, err, pid)
	}
	if s := statusJSON(t, d.mnt, "hb")[0]; s.State != "alive" || s.Pid != pid {
		t.Errorf("nfslock status of a lock held through the mount: %+v; want alive, pid %d (what cat shows)", s, pid)
	}
	if r := runCLI(t, d.mnt, "-n", "hb", "echo", "ran"); r.code != 1 || r.stdout != "" {
		t.Errorf("nfslock -n on a lock held through the mount: exit %d, stdout %q, stderr %q; want 1, nothing run", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, d.mnt, "unlock", "hb"); r.code != 1 || !strings.Contains(r.stderr, "locked by pid "+strconv.Itoa(pid)) {
		t.Errorf("nfslock unlock of a lock held through the mount: exit %d, stderr %q; want 1, left alone, naming the holder", r.code, r.stderr)
	}
	r := runCLI(t, d.mnt, "break", "--force", d.path("hb"))
	if r.code != 0 || !strings.Contains(r.stdout, "pid: "+strconv.Itoa(pid)+"\n") || d.isHeld("hb") {
		t.Errorf("nfslock break --force of a lock held through the mount: exit %d, stdout %q, stderr %q; want 0 and the holder removed", r.code, r.stdout, r.stderr)
	}
	holder.Process.Kill()
	holder.Wait()

	// Taken by nfslock through the mount's path: the mount shows it, and
	// excludes its openers, while COMMAND runs.
	h := startHolder(t, d.mnt, []string{"-n", "x"}, holdScript)
	if !d.isHeld("x") {
		t.Fatal("nfslock -n MNT/x: the backing lock x is not held")
	}
	out, err := d.shell(t, `cat "$MNT/x"; timeout 0.5 sh -c 'exec 9>>"$MNT/x"; echo opened'; echo "open: $?"`)
	if err != nil || !strings.Contains(out, "pid: "+strconv.Itoa(h.pid)+"\n") || !strings.Contains(out, "open: 124\n") {
		t.Errorf("cat and open through the mount while nfslock holds MNT/x: %q, %v; want the holder %d, and the open still waiting after 0.5s", out, err, h.pid)
	}
	h.release()
	if s := statusJSON(t, d.mnt, "x")[0]; s.State != "free" {
		t.Errorf("status after release: %+v; want free", s)
	}
}
