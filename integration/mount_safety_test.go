package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/testenv"
	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// The mount's safety rules (no false exclusion, nothing lost, nothing
// hangs), each case as the operator's trial found it.

// stop sends SIGTERM to the daemon and waits until it has exited.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("nfslockfs did not exit within 10s of SIGTERM")
	}
}

// runNfslockfs runs nfslockfs with args to its end (at most 10s; a daemon
// that mounted is stopped with SIGTERM then) and returns its exit status
// and output.
func runNfslockfs(t *testing.T, args ...string) (int, string) {
	t.Helper()
	testenv.NeedFUSE(t)
	cmd := exec.Command(bin("nfslockfs"), args...)
	cmd.Env = cliEnv()
	var out testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Signal(syscall.SIGTERM) })
	defer timer.Stop()
	cmd.Wait()
	return exitStatus(cmd.ProcessState), out.String()
}

// A mountpoint that no daemon serves refuses lock files, for root too
// (these tests run as root): before the first start, after a clean stop,
// and after a crash. Nothing is left there, so the next start mounts.
func TestMountBareMountpointRefusesLocks(t *testing.T) {
	backing, mnt := t.TempDir(), testutil.MountpointDir(t)
	d := startDaemonOn(t, backing, mnt)
	d.stop(t)
	open := `exec 9>"$MNT/job" && echo "took it" || echo "open failed"`
	for i := range 2 {
		if out, _ := d.shell(t, open); !strings.Contains(out, "open failed") || strings.Contains(out, "took it") {
			t.Errorf("opener %d on the bare mountpoint of a stopped daemon: %q, want the open to fail", i+1, out)
		}
	}
	if out, _ := d.shell(t, `mkdir "$MNT/dir" 2>&1; touch "$MNT/file" 2>&1`); !strings.Contains(out, "Operation not permitted") {
		t.Errorf("mkdir and touch on the bare mountpoint: %q, want EPERM", out)
	}
	if names := testutil.Names(t, mnt); len(names) != 0 {
		t.Errorf("the bare mountpoint holds %q", names)
	}
	d2 := startDaemonOn(t, backing, mnt)
	if out, err := d2.shell(t, `exec 9>"$MNT/job" && echo "took it"`); err != nil || !strings.Contains(out, "took it") {
		t.Errorf("through the restarted daemon: %q (%v)", out, err)
	}
	if !strings.Contains(d.stderr.String(), "immutable") {
		t.Errorf("the daemon's log does not say how it guards the mountpoint:\n%s", d.stderr)
	}
}

// After kill -9 of the daemon its dead mount answers ENOTCONN (loudly: no
// lock is taken); a new start detaches it and mounts again, as
// Restart=on-failure needs.
func TestMountRestartAfterKill(t *testing.T) {
	backing, mnt := t.TempDir(), testutil.MountpointDir(t)
	d := startDaemonOn(t, backing, mnt)
	d.cmd.Process.Kill()
	<-d.exited
	if _, err := os.Stat(mnt); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("stat of the killed daemon's mountpoint: %v, want ENOTCONN", err)
	}
	d2 := startDaemonOn(t, backing, mnt)
	out, err := d2.shell(t, `exec 9>"$MNT/job" && cat "$MNT/job"`)
	if err != nil || !strings.Contains(out, "pid: ") {
		t.Errorf("through the restarted daemon: %q (%v)", out, err)
	}
	if !strings.Contains(d2.stderr.String(), "detached the dead mount") {
		t.Errorf("the restarted daemon does not say it detached the dead mount:\n%s", d2.stderr)
	}
	if n := strings.Count(mountinfo(t), " "+mnt+" "); n != 1 {
		t.Errorf("%s is mounted %d times, want once", mnt, n)
	}
}

// A second daemon cannot be stacked on a live mountpoint: it exits at once
// with a message, and the first goes on serving.
func TestMountRefusesLiveMountpoint(t *testing.T) {
	d := startDaemon(t)
	code, out := runNfslockfs(t, t.TempDir(), d.mnt)
	if code != 1 || !strings.Contains(out, "already served by a running nfslockfs") {
		t.Errorf("a second nfslockfs on a live mountpoint: exit %d, %q", code, out)
	}
	if n := strings.Count(mountinfo(t), " "+d.mnt+" "); n != 1 {
		t.Errorf("%s is mounted %d times, want once", d.mnt, n)
	}
	if out, err := d.shell(t, `exec 9>"$MNT/x" && grep -c ^pid: "$MNT/x"`); err != nil || out != "1\n" {
		t.Errorf("the first daemon after the attempt: %q (%v)", out, err)
	}
}

// A mountpoint equal to, inside, or containing the backing directory would
// make the daemon serve its own requests and hang: refused at start.
func TestMountRefusesOverlap(t *testing.T) {
	dir := t.TempDir()
	inside := filepath.Join(dir, "sub")
	os.Mkdir(inside, 0o755)
	outer := t.TempDir()
	contained := filepath.Join(outer, "backing")
	os.Mkdir(contained, 0o755)
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(dir, link)
	for _, tc := range []struct{ backing, mnt, want string }{
		{dir, dir, "is the backing directory"},
		{link, dir, "is the backing directory"},
		{dir, inside, "is inside the backing directory"},
		{contained, outer, "contains the backing directory"},
	} {
		code, out := runNfslockfs(t, tc.backing, tc.mnt)
		if code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("nfslockfs %s %s: exit %d, %q; want exit 1 and %q", tc.backing, tc.mnt, code, out, tc.want)
		}
		if mounted(tc.mnt) {
			syscall.Unmount(tc.mnt, syscall.MNT_DETACH)
			t.Errorf("nfslockfs %s %s mounted", tc.backing, tc.mnt)
		}
	}
}

// The JSON start-up log names the record format.
func TestMountJSONLogNamesFormat(t *testing.T) {
	d := startDaemon(t, "--format=sexp", "--log-format=json")
	if !strings.Contains(d.stderr.String(), `"format":"sexp"`) {
		t.Errorf("start-up log:\n%s\nwant \"format\":\"sexp\"", d.stderr)
	}
}

func mountinfo(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
