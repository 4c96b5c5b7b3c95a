package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// cliTimeout bounds every run of nfslock in the CLI tests.
const cliTimeout = 30 * time.Second

// cliEnv is the environment nfslock runs in: the race detector's
// one-second sleep at exit is off, so that the many short runs stay fast.
func cliEnv() []string { return append(os.Environ(), "GORACE=atexit_sleep_ms=0") }

// nfslockCmd returns a command running nfslock with args in dir.
func nfslockCmd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin("nfslock"), args...)
	cmd.Dir = dir
	cmd.Env = cliEnv()
	return cmd
}

type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs nfslock with args in dir to its end.
func runCLI(t *testing.T, dir string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	cmd := nfslockCmd(ctx, dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("nfslock %q: %v", args, err)
	}
	checkNoRace(t, stderr.String())
	return cliResult{code: exitStatus(cmd.ProcessState), stdout: stdout.String(), stderr: stderr.String()}
}

// exitStatus is a finished process's status as a shell reports it.
func exitStatus(ps *os.ProcessState) int {
	if ws := ps.Sys().(syscall.WaitStatus); ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func checkNoRace(t *testing.T, stderr string) {
	t.Helper()
	if strings.Contains(stderr, "WARNING: DATA RACE") {
		t.Errorf("nfslock reported a data race:\n%s", stderr)
	}
}

// holdScript is a COMMAND for startHolder: it prints its pid and holds the
// lock until its stdin is closed.
const holdScript = `echo $$; read _ || :`

// A cliHolder is a running "nfslock ... PATH sh -c SCRIPT".
type cliHolder struct {
	t       *testing.T
	cmd     *exec.Cmd
	pid     int      // COMMAND's process
	stdin   *os.File // closing it ends holdScript
	stdout  *bufio.Reader
	stderr  *os.File
	release func() int
}

// startHolder starts nfslock with args followed by COMMAND sh -c script,
// and returns once COMMAND runs: script must first print its pid ($$).
// COMMAND starts only once the lock's record names it, so the lock is then
// held by COMMAND. The holder is released (stdin closed, waited for) at the
// end of the test if the test did not release it.
func startHolder(t *testing.T, dir string, args []string, script string) *cliHolder {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	cmd := nfslockCmd(ctx, dir, append(args, "sh", "-c", script)...)
	// Plain files and pipes of our own rather than exec's pipes: Wait must
	// return when nfslock ends, even if COMMAND outlives it.
	inR, inW := mustPipe(t)
	outR, outW := mustPipe(t)
	stderr, err := os.CreateTemp(t.TempDir(), "holder-stderr-")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, stderr
	// A holder still running at the timeout is ended with its COMMAND.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	h := &cliHolder{t: t, cmd: cmd, stdin: inW, stdout: bufio.NewReader(outR), stderr: stderr}
	h.release = sync.OnceValue(func() int {
		defer cancel()
		defer outR.Close()
		defer stderr.Close()
		inW.Close()
		cmd.Wait()
		checkNoRace(t, h.Stderr())
		return exitStatus(cmd.ProcessState)
	})
	t.Cleanup(func() { h.release() })
	line, _ := h.stdout.ReadString('\n') // if nfslock failed, line is no pid
	if h.pid, err = strconv.Atoi(strings.TrimSpace(line)); err != nil {
		t.Fatalf("holder %q did not start: read %q: %v; stderr: %s", args, line, err, h.Stderr())
	}
	return h
}

// Stderr returns what the holder's nfslock and COMMAND wrote on stderr so far.
func (h *cliHolder) Stderr() string {
	data, err := os.ReadFile(h.stderr.Name())
	if err != nil {
		h.t.Fatal(err)
	}
	return string(data)
}

func mustPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	return r, w
}

// A waiter is a running nfslock whose stderr the test reads line by line.
type waiter struct {
	cmd    *exec.Cmd
	stderr *bufio.Reader
	seen   strings.Builder
	cancel context.CancelFunc
}

func startWaiter(t *testing.T, dir string, args ...string) *waiter {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	w := &waiter{cmd: nfslockCmd(ctx, dir, args...), cancel: cancel}
	pipe, err := w.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.stderr = bufio.NewReader(pipe)
	t.Cleanup(func() { w.cmd.Process.Kill(); w.finish(t) })
	return w
}

// awaitLine reads the waiter's stderr until a line contains want, and
// returns the line.
func (w *waiter) awaitLine(t *testing.T, want string) string {
	t.Helper()
	for {
		line, err := w.stderr.ReadString('\n')
		w.seen.WriteString(line)
		if strings.Contains(line, want) {
			return line
		}
		if err != nil {
			t.Fatalf("nfslock ended without printing %q; stderr:\n%s", want, w.seen.String())
		}
	}
}

// finish reads the rest of stderr, waits for the waiter and returns its
// exit status and whole stderr. It may be called more than once.
func (w *waiter) finish(t *testing.T) (int, string) {
	t.Helper()
	defer w.cancel()
	rest, _ := bufioReadAll(w.stderr)
	w.seen.WriteString(rest)
	w.cmd.Wait()
	checkNoRace(t, w.seen.String())
	return exitStatus(w.cmd.ProcessState), w.seen.String()
}

func bufioReadAll(r *bufio.Reader) (string, error) {
	var b strings.Builder
	_, err := r.WriteTo(&b)
	return b.String(), err
}

// cliStatus is one object of "nfslock status --json".
type cliStatus struct {
	Path       string     `json:"path"`
	State      string     `json:"state"`
	Host       string     `json:"host"`
	Pid        int        `json:"pid"`
	StartTime  *time.Time `json:"start_time"`
	HeldSince  *time.Time `json:"held_since"`
	Message    *string    `json:"message"`
	MessageHex string     `json:"message_hex"`
	Raw        *string    `json:"raw"`
	RawHex     string     `json:"raw_hex"`
}

// statusJSON runs "nfslock status --json" on paths in dir.
func statusJSON(t *testing.T, dir string, paths ...string) []cliStatus {
	t.Helper()
	r := runCLI(t, dir, append([]string{"status", "--json"}, paths...)...)
	if r.code != 0 {
		t.Fatalf("nfslock status --json %q: exit %d, stderr: %s", paths, r.code, r.stderr)
	}
	var all []cliStatus
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for dec.More() {
		var s cliStatus
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("status --json output %q: %v", r.stdout, err)
		}
		all = append(all, s)
	}
	if len(all) != len(paths) {
		t.Fatalf("status --json %q gave %d objects: %s", paths, len(all), r.stdout)
	}
	return all
}

// assertHeldBy checks that the lock at path in dir is held by process pid.
func assertHeldBy(t *testing.T, dir, path string, pid int) {
	t.Helper()
	if s := statusJSON(t, dir, path)[0]; s.State != "alive" || s.Pid != pid {
		t.Errorf("lock %s: state %s, pid %d; want alive, pid %d", path, s.State, s.Pid, pid)
	}
	if r := runCLI(t, dir, "-n", path, "true"); r.code != 1 {
		t.Errorf("nfslock -n %s true on a held lock: exit %d, want 1; stderr: %s", path, r.code, r.stderr)
	}
}

// assertNothingLeft checks that dir holds no file but those named in
// except: no lock, no attempt files.
func assertNothingLeft(t *testing.T, dir string, except ...string) {
	t.Helper()
	names := slices.DeleteFunc(testutil.Names(t, dir), func(name string) bool { return slices.Contains(except, name) })
	if len(names) > 0 {
		t.Errorf("files left in the lock directory: %q", names)
	}
}
