package hostsim_test

import (
	"bufio"
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

	"github.com/nfslockfs/nfslockfs/fusefs"
	"github.com/nfslockfs/nfslockfs/internal/faultfs"
	"github.com/nfslockfs/nfslockfs/internal/hostsim"
	"github.com/nfslockfs/nfslockfs/internal/testenv"
	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// waitLimit bounds every wait for something that should happen promptly.
const waitLimit = 10 * time.Second

// start starts a host, sharing the FUSE mounts at shared, that is killed
// when t ends.
func start(t *testing.T, name string, shared ...string) *hostsim.Host {
	t.Helper()
	testenv.NeedRoot(t)
	h, err := hostsim.Start(t.Context(), name, shared...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Kill(); err != nil {
			t.Error(err)
		}
	})
	return h
}

// run runs a command in h and returns its standard output, trimmed.
func run(t *testing.T, h *hostsim.Host, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	out, err := h.Command(ctx, name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s: %s %q: %v: %s", h.Name(), name, args, err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// startLong starts a long-running shell script in h and returns it once the
// script has printed its first line, which it returns too. The script ends
// with the host.
func startLong(t *testing.T, h *hostsim.Host, script string) (*exec.Cmd, string) {
	t.Helper()
	cmd := h.Command(context.WithoutCancel(t.Context()), "sh", "-c", script)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Killing the host, not the helper, spares Kill the wait for the
	// machine's init to reap the orphaned inside helper.
	t.Cleanup(func() { h.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %q: first line: %v", h.Name(), script, err)
	}
	return cmd, strings.TrimSpace(line)
}

// waitGone waits until process pid of h no longer exists (nor as a zombie).
func waitGone(t *testing.T, h *hostsim.Host, pid string) {
	t.Helper()
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(10 * time.Millisecond) {
		if run(t, h, "sh", "-c", "test -e /proc/"+pid+" && echo present || echo gone") == "gone" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: process %s still exists after %v", h.Name(), pid, waitLimit)
		}
	}
}

func TestHostsHaveTheirOwnHostnamesAndPids(t *testing.T) {
	ourHostname, _ := os.Hostname()
	a, b := start(t, "hostsim-a"), start(t, "hostsim-b")

	if got := run(t, a, "hostname"); got != "hostsim-a" {
		t.Errorf("host a: hostname %q", got)
	}
	if got := run(t, b, "hostname"); got != "hostsim-b" {
		t.Errorf("host b: hostname %q", got)
	}
	if got, _ := os.Hostname(); got != ourHostname {
		t.Errorf("the test's hostname changed from %q to %q", ourHostname, got)
	}

	// Each host numbers its processes from 1 (its init; the init's threads
	// take the next numbers), so pids are small and collide across hosts.
	for _, h := range []*hostsim.Host{a, b} {
		if pid, err := strconv.Atoi(run(t, h, "sh", "-c", "echo $$")); err != nil || pid > 100 {
			t.Errorf("%s: pid of a new process %d (%v); want a small number", h.Name(), pid, err)
		}
	}
}

func TestProcShowsTheHostsProcesses(t *testing.T) {
	h := start(t, "hostsim-proc")
	lines := strings.Split(run(t, h, "sh", "-c", "echo $$; cat /proc/$$/stat; tr '\\0' ' ' </proc/1/cmdline"), "\n")
	if len(lines) != 3 {
		t.Fatalf("output %q; want 3 lines", lines)
	}
	if pid, stat := lines[0], lines[1]; !strings.HasPrefix(stat, pid+" (sh) ") {
		t.Errorf("/proc/%s/stat = %q; want it to describe the shell", pid, stat)
	}
	if !strings.HasPrefix(lines[2], "hostsim-init hostsim-proc") {
		t.Errorf("/proc/1/cmdline = %q; want the host's init", lines[2])
	}
}

func TestHostsShareFiles(t *testing.T) {
	a, b := start(t, "hostsim-a"), start(t, "hostsim-b")
	name := filepath.Join(t.TempDir(), "file")
	run(t, a, "sh", "-c", "hostname >"+name)
	if got := run(t, b, "cat", name); got != "hostsim-a" {
		t.Errorf("host b reads %q from the file host a wrote", got)
	}
}

func TestKillKillsEveryProcessOfTheHost(t *testing.T) {
	h := start(t, "hostsim-dead")
	pidns := run(t, h, "readlink", "/proc/self/ns/pid")
	sleeper, _ := startLong(t, h, "echo started; exec sleep 1000")
	run(t, h, "sh", "-c", "sleep 1000 >/dev/null 2>&1 &") // an orphan, child of the host's init

	if err := h.Kill(); err != nil {
		t.Fatal(err)
	}
	var exitErr *exec.ExitError
	if err := sleeper.Wait(); !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("command of the killed host: %v; want killed by SIGKILL", err)
	}
	// No process is left in the host's pid namespace.
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/pid")
	for _, p := range procs {
		if ns, _ := os.Readlink(p); ns == pidns {
			t.Errorf("%s still in the killed host's namespace %s", filepath.Dir(filepath.Dir(p)), pidns)
		}
	}
	if err := h.Command(t.Context(), "true").Run(); err == nil {
		t.Errorf("a command ran in a killed host")
	}
}

func TestCancellingStartsContextKillsTheHost(t *testing.T) {
	testenv.NeedRoot(t)
	ctx, cancel := context.WithCancel(t.Context())
	h, err := hostsim.Start(ctx, "hostsim-ctx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Kill() })
	sleeper, _ := startLong(t, h, "echo started; exec sleep 1000")

	cancel()
	done := make(chan error, 1)
	go func() { done <- sleeper.Wait() }()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("command still running %v after the host's context was cancelled", waitLimit)
	}
}

// The host's init reaps orphans, so a dead process does not linger as a
// zombie, which kill(pid, 0) would report as alive.
func TestOrphansAreReaped(t *testing.T) {
	h := start(t, "hostsim-reap")
	orphan := run(t, h, "sh", "-c", "sleep 0.1 >/dev/null 2>&1 & echo $!")
	waitGone(t, h, orphan)
}

func TestCommandForwardsSignals(t *testing.T) {
	h := start(t, "hostsim-signals")
	cmd, _ := startLong(t, h, "trap 'exit 7' TERM; echo ready; while :; do sleep 0.01; done")
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 7 {
		t.Errorf("after SIGTERM: %v; want exit status 7 from the trap", err)
	}
}

// (This test's Kill waits for the machine's init to reap the inside helper.)
func TestKillingTheHelperKillsTheCommand(t *testing.T) {
	h := start(t, "hostsim-helper")
	cmd, pid := startLong(t, h, "echo $$; exec sleep 1000")
	cmd.Process.Kill()
	var exitErr *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("killed helper: %v; want killed by SIGKILL", err)
	}
	waitGone(t, h, pid)
}

func TestCommandKeepsDirEnvAndFiles(t *testing.T) {
	h := start(t, "hostsim-files")
	dir := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := h.Command(t.Context(), "sh", "-c", `pwd; echo "$GREETING"; echo extra >&3; exit 3`)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GREETING=hello")
	cmd.ExtraFiles = []*os.File{w}
	out, err := cmd.Output()
	w.Close()
	if got, want := string(out), dir+"\nhello\n"; got != want {
		t.Errorf("stdout %q; want %q", got, want)
	}
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Errorf("exit: %v; want exit status 3", err)
	}
	if extra, _ := bufio.NewReader(r).ReadString('\n'); extra != "extra\n" {
		t.Errorf("fd 3 got %q; want %q", extra, "extra\n")
	}
}

// A faultfs mounted before the hosts start, and named to them, is their
// shared storage, and flock(2) on it excludes across hosts, as NFS locks do
// across clients.
func TestHostsShareAFaultfsMount(t *testing.T) {
	testenv.NeedFUSE(t)
	backing, mnt := t.TempDir(), t.TempDir()
	fsys, err := faultfs.Mount(backing, mnt, faultfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fsys.Unmount(); err != nil {
			t.Error(err)
		}
	})
	a, b := start(t, "hostsim-a", mnt), start(t, "hostsim-b", mnt)
	lock := filepath.Join(mnt, "lock")

	run(t, a, "sh", "-c", "hostname >"+lock)
	if got := run(t, b, "cat", lock); got != "hostsim-a" {
		t.Errorf("host b reads %q from the file host a wrote", got)
	}
	startLong(t, a, "exec 9<"+lock+"; flock -x 9; echo locked; exec sleep 1000")
	if err := b.Command(t.Context(), "flock", "--nonblock", lock, "true").Run(); err == nil {
		t.Errorf("host b got the flock that host a holds")
	}
}

// A host keeps only the FUSE mounts it is told to share: the machine's
// others (an nfslockfs daemon's, another test's faultfs, another test
// binary's run at the same time) are not its business, and a copy would
// keep each one's connection alive after its owner unmounts it, until the
// host dies. Their owners unmount at once while the host runs.
func TestHostDropsUnsharedFUSEMounts(t *testing.T) {
	testenv.NeedFUSE(t)
	shared, other, node := t.TempDir(), t.TempDir(), testutil.MountpointDir(t)
	var mounts []*faultfs.FS
	for _, mnt := range []string{shared, other} {
		fsys, err := faultfs.Mount(t.TempDir(), mnt, faultfs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fsys.Unmount() })
		mounts = append(mounts, fsys)
	}
	srv, err := fusefs.Mount(t.TempDir(), node, fusefs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := start(t, "dropper", shared)
	if got := run(t, h, "sh", "-c", "grep -E ' - fuse(blk|[.][^ ]*)? ' /proc/self/mountinfo | cut -d' ' -f5"); got != shared {
		t.Errorf("the host sees FUSE mounts %q, want %q only", got, shared)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("nfslockfs shutdown while a host runs: %v", err)
	}
	if err := mounts[1].Unmount(); err != nil {
		t.Errorf("unmounting a faultfs the host does not share, while it runs: %v", err)
	}
}
