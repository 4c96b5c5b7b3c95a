package faultfs_test

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/faultfs"
	"github.com/nfslockfs/nfslockfs/internal/testenv"
)

// waitLimit bounds every wait for something that should happen promptly.
const waitLimit = 10 * time.Second

// mount mounts a faultfs over a fresh backing directory and returns it with
// the backing directory and the mountpoint; it is unmounted when t ends.
func mount(t *testing.T, opts faultfs.Options) (*faultfs.FS, string, string) {
	t.Helper()
	testenv.NeedFUSE(t)
	backing, mnt := t.TempDir(), t.TempDir()
	f, err := faultfs.Mount(backing, mnt, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Error(err)
		}
	})
	return f, backing, mnt
}

// waitUntil polls cond until it holds, failing t after waitLimit.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitLimit); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v for %s", waitLimit, what)
		}
	}
}

func writeFile(t *testing.T, name, data string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(data), 0o666); err != nil {
		t.Fatal(err)
	}
}

func TestPassesThrough(t *testing.T) {
	_, backing, mnt := mount(t, faultfs.Options{})
	writeFile(t, filepath.Join(mnt, "a"), "through the mount")
	writeFile(t, filepath.Join(backing, "b"), "behind its back")

	for name, want := range map[string]string{
		filepath.Join(backing, "a"): "through the mount",
		filepath.Join(mnt, "b"):     "behind its back",
	} {
		got, err := os.ReadFile(name)
		if err != nil || string(got) != want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestLoseLinkRepliesLinksAndAnswersEEXIST(t *testing.T) {
	f, backing, mnt := mount(t, faultfs.Options{})
	attempt, lock := filepath.Join(mnt, "attempt"), filepath.Join(mnt, "lock")
	writeFile(t, attempt, "record")

	f.LoseLinkReplies(true)
	if err := os.Link(attempt, lock); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("Link with lost reply = %v; want EEXIST", err)
	}
	// The link happened: both names are one file, with two links.
	a, errA := os.Stat(attempt)
	l, errL := os.Lstat(lock)
	if errA != nil || errL != nil {
		t.Fatalf("after lost reply: stat attempt: %v, lstat lock: %v", errA, errL)
	}
	if !os.SameFile(a, l) || a.Sys().(*syscall.Stat_t).Nlink != 2 {
		t.Errorf("after lost reply: same file %v, nlink %d; want true, 2", os.SameFile(a, l), a.Sys().(*syscall.Stat_t).Nlink)
	}
	if _, err := os.Lstat(filepath.Join(backing, "lock")); err != nil {
		t.Errorf("backing directory has no link: %v", err)
	}

	f.LoseLinkReplies(false)
	if err := os.Link(attempt, filepath.Join(mnt, "other")); err != nil {
		t.Errorf("Link after switching lost replies off: %v", err)
	}
}

func TestFailInjectsErrnoCountedThenCleared(t *testing.T) {
	f, backing, mnt := mount(t, faultfs.Options{})
	name := filepath.Join(mnt, "file")
	writeFile(t, name, "data")

	f.Fail(faultfs.OpOpen, syscall.EIO, 1)
	if _, err := os.ReadFile(name); !errors.Is(err, syscall.EIO) {
		t.Errorf("first open = %v; want EIO", err)
	}
	if _, err := os.ReadFile(name); err != nil {
		t.Errorf("second open, after the one failure = %v", err)
	}

	// A failed LINK did not happen.
	f.Fail(faultfs.OpLink, syscall.EIO, 1)
	if err := os.Link(name, filepath.Join(mnt, "link")); !errors.Is(err, syscall.EIO) {
		t.Errorf("link = %v; want EIO", err)
	}
	if _, err := os.Lstat(filepath.Join(backing, "link")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed link exists in the backing directory (lstat: %v)", err)
	}

	file, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	f.Fail(faultfs.OpWrite, syscall.EIO, -1)
	for range 3 {
		if _, err := file.Write([]byte("x")); !errors.Is(err, syscall.EIO) {
			t.Errorf("write while failing until cleared = %v; want EIO", err)
		}
	}
	f.ClearFaults()
	if _, err := file.Write([]byte("x")); err != nil {
		t.Errorf("write after ClearFaults = %v", err)
	}
}

// The kernel retries a path-based system call once when the filesystem
// says ESTALE (as it does for NFS), so one injected ESTALE is invisible to
// the caller, and the operation is sent twice.
func TestOneESTALEIsRetriedByTheKernel(t *testing.T) {
	f, _, mnt := mount(t, faultfs.Options{})
	name := filepath.Join(mnt, "file")
	writeFile(t, name, "data")

	f.Fail(faultfs.OpLookup, syscall.ESTALE, 1)
	if _, err := os.Stat(name); err != nil {
		t.Errorf("stat with one ESTALE on LOOKUP = %v; want the kernel's retry to succeed", err)
	}
	before := f.Counts()
	f.Fail(faultfs.OpLink, syscall.ESTALE, 1)
	if err := os.Link(name, filepath.Join(mnt, "link")); err != nil {
		t.Errorf("link with one ESTALE on LINK = %v; want the kernel's retry to succeed", err)
	}
	if n := f.Counts().Sub(before)[faultfs.OpLink]; n != 2 {
		t.Errorf("LINK sent %d times; want 2", n)
	}

	f.Fail(faultfs.OpLookup, syscall.ESTALE, -1)
	if _, err := os.Stat(name); !errors.Is(err, syscall.ESTALE) {
		t.Errorf("stat with ESTALE until cleared = %v; want ESTALE", err)
	}
	f.ClearFaults()
	if _, err := os.Stat(name); err != nil {
		t.Errorf("stat after ClearFaults = %v", err)
	}
}

func TestFailRandomly(t *testing.T) {
	f, _, mnt := mount(t, faultfs.Options{})
	name := filepath.Join(mnt, "file")
	writeFile(t, name, "data")

	f.FailRandomly(faultfs.OpOpen, syscall.EIO, 1)
	for range 3 {
		if _, err := os.ReadFile(name); !errors.Is(err, syscall.EIO) {
			t.Errorf("open with probability 1 = %v; want EIO", err)
		}
	}
	f.FailRandomly(faultfs.OpOpen, syscall.EIO, 0)
	if _, err := os.ReadFile(name); err != nil {
		t.Errorf("open with probability 0 = %v", err)
	}
}

func TestLatencyDelaysEveryRequest(t *testing.T) {
	f, _, mnt := mount(t, faultfs.Options{})
	name := filepath.Join(mnt, "file")
	writeFile(t, name, "data")

	const latency = 30 * time.Millisecond
	f.SetLatency(latency)
	start := time.Now()
	if _, err := os.Stat(name); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < latency {
		t.Errorf("stat took %v with latency %v", took, latency)
	}
	f.SetLatency(0)
}

func TestHangBlocksUntilResume(t *testing.T) {
	f, _, mnt := mount(t, faultfs.Options{})
	name := filepath.Join(mnt, "file")
	writeFile(t, name, "data")

	f.ResetCounts()
	f.Hang()
	done := make(chan error, 1)
	go func() {
		_, err := os.Stat(name)
		done <- err
	}()
	waitUntil(t, "the stat to reach the filesystem", func() bool { return f.Counts()[faultfs.OpLookup] > 0 })
	select {
	case err := <-done:
		t.Fatalf("stat returned (%v) during the outage", err)
	case <-time.After(50 * time.Millisecond):
	}

	f.Resume()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stat after Resume = %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("stat still blocked %v after Resume", waitLimit)
	}
}

// A caller killed during an outage gets its request interrupted, dies at
// once, and leaves nothing that keeps the mount busy.
func TestKilledCallerLeavesHang(t *testing.T) {
	f, _, mnt := mount(t, faultfs.Options{})
	name := filepath.Join(mnt, "file")
	writeFile(t, name, "data")

	f.ResetCounts()
	f.Hang()
	cmd := exec.Command("stat", name)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "stat(1) to reach the filesystem", func() bool { return f.Counts()[faultfs.OpLookup] > 0 })

	cmd.Process.Kill()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-exited:
	case <-time.After(waitLimit):
		f.Resume() // let the test end
		t.Fatalf("killed stat(1) still blocked %v later, during the outage", waitLimit)
	}
	if err := f.Unmount(); err != nil {
		t.Errorf("Unmount after the caller was killed: %v", err)
	}
}

// The requests one step of the lock protocol costs, with the files directly
// under the mountpoint (each directory level below it adds a LOOKUP to every
// path). The numbers are what Linux 6.x sends with zero cache timeouts.
func TestCountsOfALockCycle(t *testing.T) {
	f, _, mnt := mount(t, faultfs.Options{})
	attempt, lock, moved := filepath.Join(mnt, "attempt"), filepath.Join(mnt, "lock"), filepath.Join(mnt, "moved")
	replacement := filepath.Join(mnt, "replacement")
	writeFile(t, replacement, "((host a)(pid 1)(message n))")
	waitUntil(t, "RELEASE of the setup", func() bool { return f.Counts()[faultfs.OpRelease] > 0 })

	var file *os.File
	steps := []struct {
		name string
		do   func() error
		want faultfs.Counts
	}{
		{"create", func() (err error) {
			file, err = os.OpenFile(attempt, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
			return err
		}, faultfs.Counts{faultfs.OpLookup: 1, faultfs.OpCreate: 1}},
		{"write", func() error { _, err := file.Write([]byte("((host a)(pid 1)(message m))")); return err },
			faultfs.Counts{faultfs.OpWrite: 1}},
		{"close", func() error { return file.Close() },
			faultfs.Counts{faultfs.OpFlush: 1, faultfs.OpRelease: 1}},
		{"link", func() error { return os.Link(attempt, lock) },
			faultfs.Counts{faultfs.OpLookup: 2, faultfs.OpLink: 1}},
		{"rename to a new name", func() error { return os.Rename(attempt, moved) },
			faultfs.Counts{faultfs.OpLookup: 3, faultfs.OpRename: 1}},
		{"rename over a file", func() error { return os.Rename(replacement, lock) },
			faultfs.Counts{faultfs.OpLookup: 3, faultfs.OpGetattr: 1, faultfs.OpRename: 1}},
		{"unlink", func() error { return os.Remove(moved) },
			faultfs.Counts{faultfs.OpLookup: 1, faultfs.OpUnlink: 1}},
	}
	total := faultfs.Counts{}
	for _, step := range steps {
		before := f.Counts()
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if step.want[faultfs.OpRelease] > 0 { // sent after close returns
			waitUntil(t, "RELEASE", func() bool { return f.Counts()[faultfs.OpRelease] > before[faultfs.OpRelease] })
		}
		got := f.Counts().Sub(before)
		t.Logf("%-20s %v", step.name, got)
		if got.String() != step.want.String() {
			t.Errorf("%s: requests %v; want %v", step.name, got, step.want)
		}
		for op, n := range got {
			total[op] += n
		}
	}
	t.Logf("%-20s %v", "all", total)
}

// flock(2) on the mount is handled by the kernel: it costs no request, and
// it excludes other descriptors and processes using the same mount.
func TestFlockIsKeptByTheKernel(t *testing.T) {
	f, _, mnt := mount(t, faultfs.Options{})
	name := filepath.Join(mnt, "lock")
	writeFile(t, name, "record")
	file, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()

	before := f.Counts()
	if err := syscall.Flock(int(file.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("flock: %v", err)
	}
	if got := f.Counts().Sub(before); got.Total() != 0 {
		t.Errorf("flock sent requests: %v", got)
	}

	other, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := syscall.Flock(int(other.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Errorf("flock of another descriptor = %v; want EWOULDBLOCK", err)
	}
	if err := exec.Command("flock", "--nonblock", name, "true").Run(); err == nil {
		t.Errorf("flock(1) got the lock that this process holds")
	}
}

func TestMultiUserChecksPermissions(t *testing.T) {
	_, backing, mnt := mount(t, faultfs.Options{MultiUser: true})
	for _, dir := range []string{filepath.Dir(mnt), backing} { // t.TempDir makes them 0700
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	name := filepath.Join(mnt, "file")
	writeFile(t, name, "root's")
	if err := os.Chmod(name, 0o644); err != nil {
		t.Fatal(err)
	}
	asNobody := func(args ...string) *exec.Cmd {
		return exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups"}, args...)...)
	}
	if out, err := asNobody("cat", name).CombinedOutput(); err != nil {
		t.Errorf("nobody cannot read a 0644 file: %v: %s", err, out)
	}
	if err := asNobody("sh", "-c", "echo x >"+name).Run(); err == nil {
		t.Errorf("nobody wrote to root's 0644 file")
	}
}

func TestCountsFormat(t *testing.T) {
	now := faultfs.Counts{faultfs.OpLookup: 5, faultfs.OpCreate: 1, faultfs.OpLink: 1}
	earlier := faultfs.Counts{faultfs.OpLookup: 2, faultfs.OpLink: 1}
	if got, want := now.Sub(earlier).String(), "CREATE=1 LOOKUP=3 total=4"; got != want {
		t.Errorf("Sub(...).String() = %q; want %q", got, want)
	}
	if got, want := (faultfs.Counts{}).String(), "total=0"; got != want {
		t.Errorf("empty String() = %q; want %q", got, want)
	}
}

// A mount namespace made while the filesystem was mounted (a simulated host
// of another test) holds a copy of the mount and so keeps the FUSE
// connection: Unmount ends it anyway, promptly, and without an error.
func TestUnmountEndsCopiesInOtherNamespaces(t *testing.T) {
	testenv.NeedFUSE(t)
	backing, mnt := t.TempDir(), t.TempDir()
	f, err := faultfs.Mount(backing, mnt, faultfs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	other := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	waitUntil(t, "the other namespace to copy the mount", func() bool {
		data, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(other.Process.Pid), "mountinfo"))
		return strings.Contains(string(data), " "+mnt+" ")
	})
	start := time.Now()
	if err := f.Unmount(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Unmount took %v", took)
	}
}
