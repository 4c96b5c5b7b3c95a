package integration

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/testenv"
	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// A daemon is a running nfslockfs over a fresh backing directory.
type daemon struct {
	cmd          *exec.Cmd
	backing, mnt string
	stderr       *testutil.SyncBuffer
	exited       chan struct{} // closed when the daemon has exited
	err          error         // its exit status, once exited is closed
}

// startDaemon runs `nfslockfs [options] BACKING MNT` over a fresh backing
// directory and mountpoint, and returns once the mount is up. When t ends,
// the daemon is stopped and the mount removed.
func startDaemon(t *testing.T, options ...string) *daemon {
	t.Helper()
	testenv.NeedFUSE(t)
	return startDaemonOn(t, t.TempDir(), testutil.MountpointDir(t), options...)
}

// startDaemonOn is startDaemon over the given backing directory and
// mountpoint (made by testutil.MountpointDir).
func startDaemonOn(t *testing.T, backing, mnt string, options ...string) *daemon {
	t.Helper()
	testenv.NeedFUSE(t)
	d := &daemon{backing: backing, mnt: mnt, stderr: new(testutil.SyncBuffer), exited: make(chan struct{})}
	d.cmd = exec.Command(bin("nfslockfs"), append(options, d.backing, d.mnt)...)
	d.cmd.Stderr = d.stderr
	d.cmd.Env = cliEnv()
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		if !d.hasExited() {
			d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.exited:
			case <-time.After(10 * time.Second):
				t.Error("nfslockfs did not exit within 10s of SIGTERM")
				d.cmd.Process.Kill()
				<-d.exited
			}
		}
		if mounted(d.mnt) {
			t.Errorf("%s is still mounted after nfslockfs exited", d.mnt)
			syscall.Unmount(d.mnt, syscall.MNT_DETACH)
		}
		if strings.Contains(d.stderr.String(), "WARNING: DATA RACE") {
			t.Error("nfslockfs reported a data race")
		}
		if t.Failed() {
			t.Logf("nfslockfs log:\n%s", d.stderr)
		}
	})
	// The log says so once the mount is up; the mountinfo alone could be
	// a dead mount that the daemon is about to replace.
	deadline := time.Now().Add(10 * time.Second)
	for !mounted(d.mnt) || !d.saidMounted() {
		if d.hasExited() || time.Now().After(deadline) {
			t.Fatalf("nfslockfs did not mount (%v):\n%s", d.err, d.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return d
}

// saidMounted reports whether the daemon logged that it mounted.
func (d *daemon) saidMounted() bool {
	log := d.stderr.String()
	return strings.Contains(log, "msg=mounted") || strings.Contains(log, `"msg":"mounted"`)
}

func (d *daemon) hasExited() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// path returns the mount's path of a lock name; lockPath its backing path.
func (d *daemon) path(name string) string     { return d.mnt + "/" + name }
func (d *daemon) lockPath(name string) string { return d.backing + "/" + name }

// isHeld reports whether the backing store has the lock name held.
func (d *daemon) isHeld(name string) bool {
	_, err := os.Lstat(d.lockPath(name) + ".nfs_lock")
	return err == nil
}

// shell runs a bash script with $MNT and $BACKING set, and returns its
// combined output; it fails t if the script takes more than 10s.
func (d *daemon) shell(t *testing.T, script string) (string, error) {
	t.Helper()
	return runScript(t, script, "MNT="+d.mnt, "BACKING="+d.backing, "NFSLOCK="+bin("nfslock"))
}

// runScript runs a bash script with env added to the environment, and
// returns its combined output; it fails t if the script takes more than 10s.
func runScript(t *testing.T, script string, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(cliEnv(), env...)
	cmd.WaitDelay = time.Second
	var out testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.String(), err
}

// background starts a bash script with $MNT and $BACKING set; its output
// lines arrive on the returned channel. It is killed when t ends.
func (d *daemon) background(t *testing.T, script string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(cliEnv(), "MNT="+d.mnt, "BACKING="+d.backing, "NFSLOCK="+bin("nfslock"))
	r, err := testutil.StartWithOutput(cmd)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(r)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		r.Close()
	})
	return cmd, lines
}

// expectLine fails t unless the next line from lines is want, within 5s.
func expectLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	select {
	case got := <-lines:
		if got != want {
			t.Fatalf("got line %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no line %q within 5s", want)
	}
}

// expectNoLine fails t if a line arrives within d.
func expectNoLine(t *testing.T, lines <-chan string, d time.Duration) {
	t.Helper()
	select {
	case got := <-lines:
		t.Fatalf("got line %q, want none yet", got)
	case <-time.After(d):
	}
}

// waitFor polls cond until it holds, failing t after 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// mounted reports whether dir is a mountpoint in this mount namespace.
func mounted(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(data)) {
		if fields := strings.Fields(line); len(fields) > 4 && fields[4] == dir {
			return true
		}
	}
	return false
}
