//go:build linux

package fusefs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/nfslockfs/nfslockfs/internal/testenv"
	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// testMount is a filesystem mounted for one test over a fresh backing
// directory, in this process.
type testMount struct {
	backing, dir string
	srv          *Server
	log          *testutil.SyncBuffer
}

// mount mounts a filesystem over a fresh backing directory for t and
// unmounts it when t ends; the daemon's log is shown if t fails.
func mount(t testing.TB, format Format) *testMount {
	t.Helper()
	return mountBacking(t, t.TempDir(), format)
}

// mountBacking is mount over the given backing directory.
func mountBacking(t testing.TB, backing string, format Format) *testMount {
	t.Helper()
	testenv.NeedFUSE(t)
	m := &testMount{backing: backing, dir: testutil.MountpointDir(t), log: new(testutil.SyncBuffer)}
	log := logrus.New()
	log.SetOutput(m.log)
	log.SetLevel(logrus.DebugLevel)
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "15:04:05.000000"})
	srv, err := Mount(m.backing, m.dir, Options{Format: format, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	m.srv = srv
	var st syscall.Stat_t
	if err := syscall.Stat(m.dir, &st); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			// A file of this process still open on the mount would hang
			// its exit (the last close waits for the daemon, which is in
			// this process): abort the connection.
			t.Errorf("shutdown: %v", err)
			abort := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", unix.Minor(st.Dev))
			if err := os.WriteFile(abort, []byte("1"), 0); err != nil {
				t.Errorf("aborting the FUSE connection: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", m.log)
		}
	})
	return m
}

// path returns the mount's path for the lock name.
func (m *testMount) path(name string) string { return filepath.Join(m.dir, name) }

// lockPath returns the backing path of the lock name.
func (m *testMount) lockPath(name string) string { return filepath.Join(m.backing, name) }

// isHeld reports whether the lock name is held, as the backing store says.
func (m *testMount) isHeld(name string) bool {
	_, err := os.Lstat(m.lockPath(name) + ".nfs_lock")
	return err == nil
}

// waitFor polls cond until it holds, failing t after a few seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A pendingOpen is an open for writing, made in a goroutine, that is
// blocked waiting for its lock.
type pendingOpen chan error

// blockedOpen starts opening name for writing and returns once the open is
// blocked in the daemon (the only one there).
func (m *testMount) blockedOpen(t testing.TB, name string) pendingOpen {
	t.Helper()
	got := make(pendingOpen, 1)
	go func() {
		f, err := m.openWrite(name, 0)
		if err == nil {
			f.Close()
		}
		got <- err
	}()
	m.waitForWaiters(t, 1)
	return got
}

// mustWaitFor checks that the open is still blocked after d, then calls
// release, which ends what blocks it (as described by what), and checks
// that the open succeeds soon after.
func (p pendingOpen) mustWaitFor(t testing.TB, d time.Duration, what string, release func()) {
	t.Helper()
	select {
	case err := <-p:
		t.Fatalf("open returned (%v) before %s", err, what)
	case <-time.After(d):
	}
	release()
	select {
	case err := <-p:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("open still blocked 5s after %s", what)
	}
}

// waitForWaiters waits until n opens are blocked in the daemon.
func (m *testMount) waitForWaiters(t testing.TB, n int64) {
	t.Helper()
	waitFor(t, "opens are blocked", func() bool { return m.srv.fsys.waiting.Load() >= n })
}

// openWrite opens the lock name for writing with extra flags, as a program
// using os.OpenFile does.
func (m *testMount) openWrite(name string, flags int) (*os.File, error) {
	return os.OpenFile(m.path(name), os.O_WRONLY|os.O_CREATE|flags, 0o666)
}

// tryOpen opens the lock name for writing with extra flags, for checks
// that expect the open to fail; an open that succeeds is closed at once.
// (A file left open would hang this process's exit: its last close goes to
// the daemon, which runs in this same process.)
func (m *testMount) tryOpen(name string, flags int) error {
	f, err := m.openWrite(name, flags)
	if err == nil {
		f.Close()
	}
	return err
}

// mustHold opens the lock name for writing without blocking and fails t if
// that does not take the lock; the file is closed when t ends.
func (m *testMount) mustHold(t testing.TB, name string) *os.File {
	t.Helper()
	f, err := m.openWrite(name, syscall.O_NONBLOCK)
	if err != nil {
		t.Fatalf("taking %s: %v", name, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// A remoteHolder is another process of this host holding a lock through
// the mount: a shell that keeps it open.
type remoteHolder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	said  chan string // its first line: "held SECONDS.MICROSECONDS" once it holds the lock
	once  sync.Once
}

// holdElsewhere takes the lock name in another process, for tests in which
// this process then contends for it: a second open by a process of a lock
// it holds fails with EDEADLK. Close releases it (the process exits); it
// is released when t ends at the latest.
func (m *testMount) holdElsewhere(t testing.TB, name string) *remoteHolder {
	t.Helper()
	h := m.startHolder(t, name)
	h.held(t, 5*time.Second)
	return h
}

// startHolder starts another process that opens the lock name for writing,
// waiting for it as long as it takes, and then holds it until Close (or
// until t ends).
func (m *testMount) startHolder(t testing.TB, name string) *remoteHolder {
	t.Helper()
	cmd := exec.Command("bash", "-c", `exec 9>"$1" || exit 1; echo "held $EPOCHREALTIME"; read -r _`, "holder", m.path(name))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := testutil.StartWithOutput(cmd)
	if err != nil {
		t.Fatal(err)
	}
	h := &remoteHolder{cmd: cmd, stdin: stdin, said: make(chan string, 1)}
	t.Cleanup(h.Close)
	go func() { // ends at the holder's first line, or when it exits
		defer out.Close()
		line, _ := bufio.NewReader(out).ReadString('\n')
		h.said <- line
	}()
	return h
}

// held waits up to d for the holder to take its lock, and returns when it
// did, by the machine's clock as the holder read it just after its open
// returned (to the microsecond).
func (h *remoteHolder) held(t testing.TB, d time.Duration) time.Time {
	t.Helper()
	select {
	case line := <-h.said:
		var sec, usec int64
		if _, err := fmt.Sscanf(line, "held %d.%d\n", &sec, &usec); err != nil {
			t.Fatalf("the holder of %s said %q", h.cmd.Args[len(h.cmd.Args)-1], line)
		}
		return time.Unix(sec, usec*1000)
	case <-time.After(d):
		t.Fatalf("another process could not take %s within %v", h.cmd.Args[len(h.cmd.Args)-1], d)
		return time.Time{}
	}
}

// Close ends the holder, which releases its lock as it exits.
func (h *remoteHolder) Close() {
	h.once.Do(func() {
		h.stdin.Close()
		h.cmd.Wait()
	})
}

// opener runs testdata/opener.c, a C program that opens a lock for
// writing, reports how that went, and holds the lock until released.
type opener struct {
	cmd    *exec.Cmd
	out    *bufio.Reader
	stdin  io.WriteCloser
	exited chan struct{} // closed when the process has exited
	err    error         // how it exited, once exited is closed
}

// openerDir holds the opener binary, built once for the test run.
var openerDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if openerDir != "" {
		os.RemoveAll(openerDir)
	}
	os.Exit(code)
}

var buildOpener = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "fusefs-opener-")
	if err != nil {
		return "", err
	}
	openerDir = dir
	bin := filepath.Join(dir, "opener")
	out, err := exec.Command("gcc", "-Wall", "-o", bin, "testdata/opener.c").CombinedOutput()
	if err != nil {
		return "", errors.New("gcc: " + err.Error() + ": " + string(out))
	}
	return bin, nil
})

// startOpener starts opener on path with its options, and returns once it
// is about to open.
func startOpener(t testing.TB, path string, options ...string) *opener {
	t.Helper()
	testenv.NeedTool(t, "gcc")
	bin, err := buildOpener()
	if err != nil {
		t.Fatalf("cannot build the C test program: %v", err)
	}
	cmd := exec.Command(bin, append([]string{path}, options...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	// A pipe of our own: Wait would close one made by StdoutPipe, and lose
	// what the opener said just before it exited.
	stdout, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdout.Close() })
	o := &opener{cmd: cmd, out: bufio.NewReader(stdout), stdin: stdin, exited: make(chan struct{})}
	go func() {
		o.err = cmd.Wait()
		close(o.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		o.wait(t)
	})
	if line := o.line(t); line != "waiting" {
		t.Fatalf("opener said %q, want waiting", line)
	}
	return o
}

// line returns the next line of the opener's output, failing t if none
// comes within a few seconds.
func (o *opener) line(t testing.TB) string {
	t.Helper()
	lines := make(chan string, 1)
	go func() {
		s, _ := o.out.ReadString('\n')
		lines <- strings.TrimSuffix(s, "\n")
	}()
	select {
	case s := <-lines:
		return s
	case <-time.After(5 * time.Second):
		t.Fatalf("opener %d said nothing for 5s", o.cmd.Process.Pid)
		return ""
	}
}

// wait waits for the opener to exit and returns how: nil for status 0.
func (o *opener) wait(t testing.TB) error {
	t.Helper()
	select {
	case <-o.exited:
		return o.err
	case <-time.After(5 * time.Second):
		t.Fatalf("opener %d did not exit within 5s", o.cmd.Process.Pid)
		return nil
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
