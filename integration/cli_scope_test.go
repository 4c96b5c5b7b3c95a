package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// becomeSubreaper makes this test process the parent of the orphans of its
// children (COMMAND's background processes, the keeper), so that it can
// reap them, whatever init does: a zombie whose parent lives still looks
// alive.
func becomeSubreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("cannot become a child subreaper: %v", err)
	}
	t.Cleanup(func() {
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
		var ws syscall.WaitStatus
		for {
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				return
			}
		}
	})
}

// background is a COMMAND that starts a background process (its pid in
// the file bg) holding no descriptor of the test's, as `daemon &` does.
const background = `sleep 30 </dev/null >/dev/null 2>&1 & echo $! > bg`

// readPid reads the pid that COMMAND wrote to the file name in dir.
func readPid(t *testing.T, dir, name string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// killAndReap kills the orphan pid, now this process's child, and reaps it.
func killAndReap(t *testing.T, pid int) {
	t.Helper()
	if pid <= 0 { // kill(0) or kill(-1) would hit this test itself
		t.Fatalf("no process to kill: pid %d", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	reap(t, pid)
}

// assertFreed waits until the lock at path can be taken again.
func assertFreed(t *testing.T, dir, path string) {
	t.Helper()
	waitFor(t, "the lock is free", func() bool { return runCLI(t, dir, "-n", path, "true").code == 0 })
}

// flock(1)'s scope: the lock lives on the open file that COMMAND's
// background process inherited, so it stays held after COMMAND and
// nfslock have exited, until the last of them is gone.
func TestCLIBackgroundProcessKeepsLock(t *testing.T) {
	becomeSubreaper(t)
	dir := t.TempDir()
	start := time.Now()
	if r := runCLI(t, dir, "-n", "fd", "sh", "-c", background); r.code != 0 {
		t.Fatalf("nfslock -n fd sh -c '...&': exit %d; stderr: %s", r.code, r.stderr)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("nfslock waited %v for the background process; flock(1) exits with COMMAND", took)
	}
	bg := readPid(t, dir, "bg")
	if r := runCLI(t, dir, "-n", "fd", "echo", "x"); r.code != 1 || r.stdout != "" {
		t.Errorf("nfslock -n fd echo x while the background process runs: exit %d, stdout %q; want 1, nothing run", r.code, r.stdout)
	}
	s := statusJSON(t, dir, "fd")[0]
	if s.State != "alive" {
		t.Errorf("status while the background process runs: %+v; want alive", s)
	}
	killAndReap(t, bg)
	assertFreed(t, dir, "fd")
	if s.Pid > 0 {
		reap(t, s.Pid) // the keeper, gone once the lock is released
	}
	assertNothingLeft(t, dir, "bg")
}

// Descriptor 3 is COMMAND's to use as it likes: a COMMAND that writes to it
// does not end the scope.
func TestCLIScopeSurvivesWritesToItsDescriptor(t *testing.T) {
	becomeSubreaper(t)
	dir := t.TempDir()
	if r := runCLI(t, dir, "-n", "fd", "sh", "-c", "echo noise >&3; "+background); r.code != 0 {
		t.Fatalf("exit %d; stderr: %s", r.code, r.stderr)
	}
	bg := readPid(t, dir, "bg")
	s := statusJSON(t, dir, "fd")[0]
	if s.State != "alive" {
		t.Errorf("status while the background process runs: %+v; want alive", s)
	}
	killAndReap(t, bg)
	assertFreed(t, dir, "fd")
	if s.Pid > 0 {
		reap(t, s.Pid)
	}
}

// kill -9 of each party: COMMAND, its background process, the keeper.
// (nfslock itself: TestCLIKill9KeepsLockWhileCommandRuns.)
func TestCLIKill9OfEachPartyOfTheLock(t *testing.T) {
	t.Run("command", func(t *testing.T) {
		becomeSubreaper(t)
		dir := t.TempDir()
		h := startHolder(t, dir, []string{"fd"}, background+`; echo $$; read _`)
		bg := readPid(t, dir, "bg")
		if err := syscall.Kill(h.pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code := h.release(); code != 128+int(syscall.SIGKILL) {
			t.Errorf("nfslock whose COMMAND was killed: exit %d, want %d", code, 128+int(syscall.SIGKILL))
		}
		s := statusJSON(t, dir, "fd")[0]
		if s.State != "alive" || s.Pid == h.pid {
			t.Errorf("status after COMMAND was killed, its background process running: %+v; want alive, not naming the dead COMMAND %d", s, h.pid)
		}
		if r := runCLI(t, dir, "-n", "fd", "true"); r.code != 1 {
			t.Errorf("nfslock -n fd true after COMMAND was killed, its background process running: exit %d, want 1", r.code)
		}
		killAndReap(t, bg)
		assertFreed(t, dir, "fd")
		if s.Pid > 0 {
			reap(t, s.Pid)
		}
		assertNothingLeft(t, dir, "bg")
	})
	t.Run("keeper", func(t *testing.T) {
		becomeSubreaper(t)
		dir := t.TempDir()
		if r := runCLI(t, dir, "fd", "sh", "-c", background); r.code != 0 {
			t.Fatalf("exit %d; stderr: %s", r.code, r.stderr)
		}
		bg := readPid(t, dir, "bg")
		keeper := statusJSON(t, dir, "fd")[0].Pid
		// The keeper is the lock's holder, as COMMAND was: killing it
		// frees the lock, and the next acquirer cleans it up as stale.
		killAndReap(t, keeper)
		if s := statusJSON(t, dir, "fd")[0]; s.State != "dead" {
			t.Errorf("status after the keeper was killed: %+v; want dead", s)
		}
		assertFreed(t, dir, "fd")
		killAndReap(t, bg)
		assertNothingLeft(t, dir, "bg")
	})
}

// A COMMAND that takes the lock its nfslock holds for it would wait for
// itself for ever: it is told so at once.
func TestCLINestedOnSameLockFailsAtOnce(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cmd := nfslockCmd(ctx, dir, "fd", bin("nfslock"), "fd", "echo", "inner ran")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("nfslock fd nfslock fd ...: still waiting after 10s; stderr: %s", stderr.String())
	}
	code := exitStatus(cmd.ProcessState)
	if code != 66 || len(stdout) > 0 || !strings.Contains(stderr.String(), "held in the name of this very process") {
		t.Errorf("nfslock fd nfslock fd echo: exit %d, stdout %q, stderr %q; want 66, nothing run, and a message that the lock is held for the inner nfslock itself", code, stdout, stderr.String())
	}
	assertNothingLeft(t, dir)
}
