package integration

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/testenv"
)

func TestCLIExitsWithCommandStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string // after PATH
		want int
	}{
		{"success", []string{"true"}, 0},
		{"failure", []string{"false"}, 1},
		{"exit status", []string{"sh", "-c", "exit 3"}, 3},
		{"shell command", []string{"-c", "exit 4"}, 4},
		{"long -c", []string{"--command", "exit 5"}, 5},
		{"killed by a signal", []string{"sh", "-c", "kill -TERM $$"}, 128 + 15},
		{"not found", []string{"no-such-command-for-nfslock"}, 127},
		{"not executable", []string{"/dev/null"}, 126},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := runCLI(t, dir, append([]string{"lock"}, tc.args...)...)
			if r.code != tc.want {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, tc.want, r.stderr)
			}
			assertNothingLeft(t, dir)
		})
	}
}

func TestCLIRunsCommandAsGiven(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		// Everything after PATH is COMMAND's, options included.
		{[]string{"lock", "echo", "-n", "a  b"}, "a  b"},
		{[]string{"lock", "-c", "echo $((6*7))"}, "42\n"},
		// "--" ends the options, so PATH may start with "-".
		{[]string{"--", "-lock", "echo", "dash"}, "dash\n"},
		// flock's spellings: bundled, attached and --opt=value.
		{[]string{"-nE7", "lock", "echo", "bundled"}, "bundled\n"},
		{[]string{"-w1", "lock", "echo", "attached"}, "attached\n"},
		{[]string{"--timeout=1.5", "--conflict-exit-code", "3", "lock", "echo", "long"}, "long\n"},
		{[]string{"-x", "--nb", "--wait", "2s", "lock", "echo", "flock aliases"}, "flock aliases\n"},
	} {
		r := runCLI(t, dir, tc.args...)
		if r.code != 0 || r.stdout != tc.want {
			t.Errorf("nfslock %q: exit %d, stdout %q; want 0, %q; stderr: %s", tc.args, r.code, r.stdout, tc.want, r.stderr)
		}
	}
	assertNothingLeft(t, dir)
}

func TestCLINonblock(t *testing.T) {
	dir := t.TempDir()
	h := startHolder(t, dir, []string{"-m", "nightly build", "lock"}, holdScript)
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"-n"}, 1},
		{[]string{"--nonblock"}, 1},
		{[]string{"-n", "-E", "42"}, 42},
		{[]string{"-w", "0"}, 1}, // as in flock(1), -w 0 is -n
	} {
		r := runCLI(t, dir, append(tc.args, "lock", "echo", "ran")...)
		if r.code != tc.want || r.stdout != "" {
			t.Errorf("nfslock %q on a held lock: exit %d, stdout %q; want %d and COMMAND not run", tc.args, r.code, r.stdout, tc.want)
		}
		if r.stderr != "" {
			t.Errorf("nfslock %q: a conflict is silent without -v, as in flock(1); stderr: %s", tc.args, r.stderr)
		}
	}
	r := runCLI(t, dir, "-n", "-v", "lock", "true")
	for _, want := range []string{"lock is held", "pid=" + strconv.Itoa(h.pid), `message="nightly build"`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("nfslock -n -v: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if code := h.release(); code != 0 {
		t.Errorf("holder exited %d; stderr: %s", code, h.Stderr())
	}
	if r := runCLI(t, dir, "-n", "lock", "true"); r.code != 0 {
		t.Errorf("nfslock -n on a released lock: exit %d; stderr: %s", r.code, r.stderr)
	}
	assertNothingLeft(t, dir)
}

func TestCLITimeout(t *testing.T) {
	dir := t.TempDir()
	h := startHolder(t, dir, []string{"lock"}, holdScript)
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"-w", "0.2"}, 1},
		{[]string{"-w", "200ms", "-E", "9"}, 9},
		{[]string{"--timeout", ".2"}, 1},
	} {
		start := time.Now()
		r := runCLI(t, dir, append(tc.args, "lock", "echo", "ran")...)
		if r.code != tc.want || r.stdout != "" {
			t.Errorf("nfslock %q on a held lock: exit %d, stdout %q; want %d and COMMAND not run; stderr: %s", tc.args, r.code, r.stdout, tc.want, r.stderr)
		}
		if waited := time.Since(start); waited < 200*time.Millisecond {
			t.Errorf("nfslock %q gave up after %v, before its timeout", tc.args, waited)
		}
	}

	// A release during the wait lets the waiter in.
	w := startWaiter(t, dir, "-v", "-w", "20", "lock", "true")
	w.awaitLine(t, "waiting for lock")
	h.release()
	if code, stderr := w.finish(t); code != 0 {
		t.Errorf("waiter whose holder released: exit %d; stderr: %s", code, stderr)
	}
	assertNothingLeft(t, dir)
}

func TestCLIVerbose(t *testing.T) {
	dir := t.TempDir()
	h := startHolder(t, dir, []string{"-m", "nightly build", "lock"}, holdScript)
	w := startWaiter(t, dir, "-v", "lock", "true")
	line := w.awaitLine(t, "waiting for lock")
	host, _ := os.Hostname()
	for _, want := range []string{"host=" + host, "pid=" + strconv.Itoa(h.pid), `message="nightly build"`, "waited=", "held="} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line lacks %q: %s", want, line)
		}
	}
	h.release()
	code, stderr := w.finish(t)
	if code != 0 {
		t.Errorf("waiter: exit %d; stderr: %s", code, stderr)
	}
	if !strings.Contains(stderr, "lock acquired") || !strings.Contains(stderr, "waited=") {
		t.Errorf("nfslock -v does not say how long taking the lock took:\n%s", stderr)
	}
}

func TestCLIMessage(t *testing.T) {
	dir := t.TempDir()
	startHolder(t, dir, []string{"-m", "nightly build", "given"}, holdScript)
	startHolder(t, dir, []string{"default"}, holdScript)
	st := statusJSON(t, dir, "given", "default")
	for i, want := range []string{"nightly build", "sh -c '" + holdScript + "'"} {
		if st[i].Message == nil || *st[i].Message != want {
			t.Errorf("lock %s: message %v, want %q", st[i].Path, st[i].Message, want)
		}
	}
}

func TestCLIForwardsSignals(t *testing.T) {
	// COMMAND tells by its exit status which signal reached it.
	const trapScript = `trap 'exit 10' INT; trap 'exit 11' TERM; trap 'exit 12' HUP; echo $$; while :; do sleep 0.02; done`
	for _, tc := range []struct {
		sig    syscall.Signal
		script string
		want   int
	}{
		{syscall.SIGINT, trapScript, 10},
		{syscall.SIGTERM, trapScript, 11},
		{syscall.SIGHUP, trapScript, 12},
		{syscall.SIGTERM, `echo $$; exec sleep 30`, 128 + int(syscall.SIGTERM)},
	} {
		t.Run(fmt.Sprintf("%v to %q", tc.sig, tc.script), func(t *testing.T) {
			dir := t.TempDir()
			h := startHolder(t, dir, []string{"lock"}, tc.script)
			if err := h.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			if code := h.release(); code != tc.want {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.want, h.Stderr())
			}
			assertNothingLeft(t, dir)
		})
	}
}

func TestCLIKill9KeepsLockWhileCommandRuns(t *testing.T) {
	// COMMAND outlives nfslock and is then orphaned: this test reaps it.
	becomeSubreaper(t)

	dir := t.TempDir()
	h := startHolder(t, dir, []string{"lock"}, holdScript)
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	h.cmd.Wait()
	assertHeldBy(t, dir, "lock", h.pid)

	h.stdin.Close() // COMMAND ends
	reap(t, h.pid)
	if r := runCLI(t, dir, "-n", "lock", "true"); r.code != 0 {
		t.Fatalf("nfslock -n after COMMAND ended: exit %d; stderr: %s", r.code, r.stderr)
	}
	assertNothingLeft(t, dir)
}

// reap waits for the orphan pid, now this process's child, to end.
func reap(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(cliTimeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); got == pid || err != nil {
			return
		}
	}
	t.Fatalf("process %d did not end", pid)
}

func TestCLISignalWhileWaiting(t *testing.T) {
	dir := t.TempDir()
	h := startHolder(t, dir, []string{"lock"}, holdScript)
	w := startWaiter(t, dir, "-v", "lock", "echo", "ran")
	w.awaitLine(t, "waiting for lock")
	if err := w.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code, stderr := w.finish(t); code != 128+int(syscall.SIGINT) {
		t.Errorf("waiter interrupted by SIGINT: exit %d, want %d; stderr: %s", code, 128+int(syscall.SIGINT), stderr)
	}
	assertHeldBy(t, dir, "lock", h.pid)
	h.release()
	assertNothingLeft(t, dir)
}

// flock(1) users lock data files, directories and the script itself; with
// nfslock that must work the same way and leave them untouched.
func TestCLILocksPathHoldingDataWithoutTouchingIt(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.csv"), []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("data.csv", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"data.csv", "subdir", "link"} {
		r := runCLI(t, dir, path, "echo", "ran")
		if r.code != 0 || r.stdout != "ran\n" {
			t.Errorf("nfslock %s: exit %d, stdout %q, stderr %q; want 0 and the command's output", path, r.code, r.stdout, r.stderr)
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, "data.csv")); err != nil || string(data) != "precious\n" {
		t.Errorf("data.csv now holds %q (%v)", data, err)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "link")); err != nil || fi.Mode().Type() != os.ModeSymlink {
		t.Errorf("the symbolic link is gone: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "subdir")); err != nil {
		t.Error(err)
	}
	for _, lock := range []string{"data.csv.nfs_lock", "subdir.nfs_lock", "link.nfs_lock"} {
		if _, err := os.Lstat(filepath.Join(dir, lock)); err == nil {
			t.Errorf("%s left behind", lock)
		}
	}
}

func TestCLILockErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		path, wantErr string
	}{
		{"no/such/dir/lock", "no such file or directory"},
		{strings.Repeat("n", 250), "at most"},
	} {
		r := runCLI(t, dir, "-w", "5", tc.path, "echo", "ran")
		if r.code != 66 || r.stdout != "" || !strings.Contains(r.stderr, tc.wantErr) {
			t.Errorf("nfslock %s: exit %d, stdout %q, stderr %q; want 66 and an error saying %q", tc.path, r.code, r.stdout, r.stderr, tc.wantErr)
		}
	}
	assertNothingLeft(t, dir)
}

func TestCLIUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{},
		{"lock"},
		{"-n"},
		{"-w"},
		{"-w", "abc", "lock", "true"},
		{"-w", "-1", "lock", "true"},
		{"-E", "256", "lock", "true"},
		{"-E", "x", "lock", "true"},
		{"--bogus", "lock", "true"},
		{"-u", "lock", "true"},
		{"--nonblock=yes", "lock", "true"},
		{"-m", strings.Repeat("m", 5000), "lock", "true"},
		{"lock", "-c"},
		{"lock", "-c", "true", "extra"},
		{"status"},
		{"status", "--bogus", "lock"},
		{"unlock"},
		{"unlock", "a", "b"},
		{"break"},
		{"break", "--force"},
		{"break", "lock"},
	} {
		r := runCLI(t, dir, args...)
		if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
			t.Errorf("nfslock %q: exit %d, stdout %q, stderr %q; want 2 and a one-line reason", args, r.code, r.stdout, r.stderr)
		}
	}
	assertNothingLeft(t, dir)
}

func TestCLIHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"-n", "--help"},
		{"status", "--help"}, {"status", "-h"}, {"unlock", "--help"}, {"break", "--help"},
	} {
		r := runCLI(t, t.TempDir(), args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "Usage") || r.stderr != "" {
			t.Errorf("nfslock %q: exit %d, stdout %q, stderr %q; want 0 and help on stdout", args, r.code, r.stdout, r.stderr)
		}
	}
}

// coreRecords holds the holder records Core writes, the library's fixtures
// (see their README.md).
const coreRecords = "../nfslock/testdata/core-records"

// installRecord makes the lock name in dir held by the record in the
// fixture file.
func installRecord(t *testing.T, dir, name, fixture string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(coreRecords, fixture))
	if err != nil {
		t.Fatal(err)
	}
	writeRecord(t, dir, name, string(data))
}

func writeRecord(t *testing.T, dir, name, record string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+".nfs_lock"), []byte(record), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeStaleRecord makes the lock name in dir held by a process of this
// host that has ended.
func writeStaleRecord(t *testing.T, dir, name string) int {
	t.Helper()
	ended := exec.Command("true")
	if err := ended.Run(); err != nil {
		t.Fatal(err)
	}
	pid := ended.ProcessState.Pid()
	writeRecord(t, dir, name, fmt.Sprintf("((host %s)(pid %d)(message \"gone\")(start_time(2001-02-03 04:05:06.000000Z)))", hostname(t), pid))
	return pid
}

// hostname returns this host's name, and skips tests whose "other host"
// fixtures would name this one.
func hostname(t *testing.T) string {
	t.Helper()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	if host == "node17" || host == "n1" || host == "node17.cluster.example.com" {
		t.Skipf("this host is called %s, like the holder in the record fixtures", host)
	}
	return host
}

func TestCLIStatus(t *testing.T) {
	dir := t.TempDir()
	host := hostname(t)
	h := startHolder(t, dir, []string{"-m", "nightly build", "held"}, holdScript)
	stalePid := writeStaleRecord(t, dir, "stale")
	installRecord(t, dir, "foreign", "v1-human-wrapped.sexp")
	installRecord(t, dir, "multiline", "v1-human-multiline-message.sexp")
	installRecord(t, dir, "corrupt", "corrupt-not-sexp.sexp")
	installRecord(t, dir, "empty", "corrupt-empty.sexp")

	r := runCLI(t, dir, "status", "free", "held", "stale", "foreign", "multiline", "corrupt", "empty")
	if r.code != 0 {
		t.Fatalf("status: exit %d; stderr: %s", r.code, r.stderr)
	}
	blocks := strings.Split(r.stdout, "\n\n")
	want := [][]string{
		{"path: free\nstate: free\n"},
		{"path: held\n", "state: alive\n", "host: " + host + "\n", "pid: " + strconv.Itoa(h.pid) + "\n", "started: ", "held-since: ", "message: nightly build\n"},
		{"path: stale\n", "state: dead\n", "pid: " + strconv.Itoa(stalePid) + "\n", "started: 2001-02-03T04:05:06.000000Z\n"},
		{"path: foreign\n", "state: remote\n", "host: node17.cluster.example.com\n", "pid: 4242\n",
			"started: 2026-11-27T08:00:00.123456Z\n", "message: make -j8 nightly-build --target=all\n"},
		{"state: remote\n", `message: first line\nsecond line` + "\n"},
		{"path: corrupt\n", "state: corrupt\n", `raw: node17 4242\n` + "\n", "held-since: "},
		{"path: empty\n", "state: corrupt\n", "raw: \n"},
	}
	if len(blocks) != len(want) {
		t.Fatalf("status printed %d blocks, want %d:\n%s", len(blocks), len(want), r.stdout)
	}
	for i, block := range blocks {
		for _, w := range want[i] {
			if !strings.Contains(block+"\n", w) {
				t.Errorf("status block lacks %q:\n%s", w, block)
			}
		}
	}
}

func TestCLIStatusOfMistypedPath(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"status", "free", "no/such/dir/lock"}, {"unlock", "no/such/dir/lock"}, {"break", "--force", "no/such/dir/lock"}} {
		r := runCLI(t, dir, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "no such file or directory") || strings.Contains(r.stdout, "no/such") {
			t.Errorf("nfslock %q: exit %d, stdout %q, stderr %q; want 1 and an error, not a free lock", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestCLIStatusJSONReadsCoreRecords checks status --json against what the
// fixtures' expected.json says each of Core's records holds.
func TestCLIStatusJSONReadsCoreRecords(t *testing.T) {
	hostname(t)
	var expected map[string]json.RawMessage
	data, err := os.ReadFile(filepath.Join(coreRecords, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &expected); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var names []string
	for fixture := range expected {
		installRecord(t, dir, fixture, fixture)
		names = append(names, fixture)
	}
	for _, got := range statusJSON(t, dir, names...) {
		var want struct {
			Host       string  `json:"host"`
			Pid        int     `json:"pid"`
			Message    *string `json:"message"`
			MessageHex string  `json:"message_hex"`
			StartTime  *string `json:"start_time"`
		}
		if string(expected[got.Path]) == `"corrupt"` {
			if got.State != "corrupt" || got.Raw == nil && got.RawHex == "" {
				t.Errorf("%s: state %s, raw %v; want corrupt with the raw bytes", got.Path, got.State, got.Raw)
			}
			continue
		}
		if err := json.Unmarshal(expected[got.Path], &want); err != nil {
			t.Fatal(err)
		}
		if got.State != "remote" || got.Host != want.Host || got.Pid != want.Pid {
			t.Errorf("%s: state %s, host %s, pid %d; want remote, %s, %d", got.Path, got.State, got.Host, got.Pid, want.Host, want.Pid)
		}
		if msg(got.Message, got.MessageHex) != msg(want.Message, want.MessageHex) {
			t.Errorf("%s: message %q, want %q", got.Path, msg(got.Message, got.MessageHex), msg(want.Message, want.MessageHex))
		}
		switch {
		case want.StartTime == nil && got.StartTime != nil:
			t.Errorf("%s: start_time %v, want none", got.Path, got.StartTime)
		case want.StartTime != nil && (got.StartTime == nil || got.StartTime.Format(time.RFC3339Nano) != *want.StartTime):
			t.Errorf("%s: start_time %v, want %s", got.Path, got.StartTime, *want.StartTime)
		}
	}
}

// msg returns a message given as text or in hex.
func msg(text *string, hexText string) string {
	if text != nil {
		return *text
	}
	b, _ := hex.DecodeString(hexText)
	return string(b)
}

func TestCLIUnlock(t *testing.T) {
	dir := t.TempDir()
	h := startHolder(t, dir, []string{"held"}, holdScript)
	writeStaleRecord(t, dir, "stale")
	installRecord(t, dir, "foreign", "v2-machine.sexp")

	if r := runCLI(t, dir, "unlock", "stale"); r.code != 0 {
		t.Errorf("unlock of a dead holder's lock: exit %d; stderr: %s", r.code, r.stderr)
	}
	if st := statusJSON(t, dir, "stale")[0]; st.State != "free" {
		t.Errorf("after unlock: state %s, want free", st.State)
	}
	for _, tc := range []struct{ path, wantErr string }{
		{"held", "pid " + strconv.Itoa(h.pid)},
		{"foreign", "node17"},
	} {
		r := runCLI(t, dir, "unlock", tc.path)
		if r.code != 1 || !strings.Contains(r.stderr, tc.wantErr) {
			t.Errorf("unlock %s: exit %d, stderr %q; want 1 and an error naming %q", tc.path, r.code, r.stderr, tc.wantErr)
		}
	}
	assertHeldBy(t, dir, "held", h.pid)
	if st := statusJSON(t, dir, "foreign")[0]; st.State != "remote" {
		t.Errorf("unlock removed another host's lock: state %s", st.State)
	}
	if r := runCLI(t, dir, "unlock", "free"); r.code != 0 || !strings.Contains(r.stderr, "not locked") {
		t.Errorf("unlock of a free lock: exit %d, stderr %q; want 0 and a note", r.code, r.stderr)
	}
}

func TestCLIBreak(t *testing.T) {
	dir := t.TempDir()
	hostname(t)
	installRecord(t, dir, "foreign", "v2-machine.sexp")
	installRecord(t, dir, "corrupt", "corrupt-truncated.sexp")

	r := runCLI(t, dir, "break", "foreign")
	if r.code != 2 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("break without --force: exit %d, stderr %q; want 2 and a hint at --force", r.code, r.stderr)
	}
	if st := statusJSON(t, dir, "foreign")[0]; st.State != "remote" {
		t.Fatalf("break without --force removed the lock: state %s", st.State)
	}
	for _, tc := range []struct{ path, want string }{
		{"foreign", "host: node17\npid: 4242\n"},
		{"corrupt", "raw: ((host node17) (pid 42\n"},
	} {
		r := runCLI(t, dir, "break", "--force", tc.path)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "removed:\npath: "+tc.path+"\n") || !strings.Contains(r.stdout, tc.want) {
			t.Errorf("break --force %s: exit %d, stdout %q; want 0 and a report of the removed holder with %q; stderr: %s", tc.path, r.code, r.stdout, tc.want, r.stderr)
		}
	}
	if r := runCLI(t, dir, "break", "--force", "free"); r.code != 0 || !strings.Contains(r.stderr, "not locked") {
		t.Errorf("break of a free lock: exit %d, stderr %q; want 0 and a note", r.code, r.stderr)
	}
	assertNothingLeft(t, dir)

	// Breaking a running nfslock's lock: it notices when it releases.
	h := startHolder(t, dir, []string{"held"}, holdScript)
	if r := runCLI(t, dir, "break", "--force", "held"); r.code != 0 {
		t.Errorf("break --force of a live lock: exit %d; stderr: %s", r.code, r.stderr)
	}
	if code := h.release(); code != 0 || !strings.Contains(h.Stderr(), "removed by someone else") {
		t.Errorf("holder whose lock was broken: exit %d, stderr %q; want COMMAND's status 0 and a warning", code, h.Stderr())
	}
	assertNothingLeft(t, dir)
}

// flockScript is run with flock(1) and with nfslock as $1 and a lock path
// as $2, and prints the exit status of each case.
const flockScript = `
T=$1 L=$2
$T -n "$L" true; echo "free -n: $?"
$T "$L" false; echo "false: $?"
$T "$L" sh -c 'exit 3'; echo "exit 3: $?"
$T "$L" -c 'exit 4'; echo "-c exit 4: $?"
$T "$L" sh -c 'kill -TERM $$'; echo "killed by SIGTERM: $?"

mkfifo "$L.go"
$T "$L" sh -c ': > "$0.held"; read _ < "$0.go"' "$L" &
while [ ! -e "$L.held" ]; do sleep 0.01; done
$T -n "$L" echo ran; echo "held -n: $?"
$T -n -E 42 "$L" echo ran; echo "held -n -E 42: $?"
$T -w 0 "$L" echo ran; echo "held -w 0: $?"
$T -w 0.2 "$L" echo ran; echo "held -w 0.2: $?"
$T -w 0.2 -E 9 "$L" echo ran; echo "held -w 0.2 -E 9: $?"
(sleep 0.2; echo > "$L.go") &
$T -w 20 "$L" true; echo "released during -w 20: $?"
wait
$T -n "$L" true; echo "free again -n: $?"
`

const flockScriptWant = `free -n: 0
false: 1
exit 3: 3
-c exit 4: 4
killed by SIGTERM: 143
held -n: 1
held -n -E 42: 42
held -w 0: 1
held -w 0.2: 1
held -w 0.2 -E 9: 9
released during -w 20: 0
free again -n: 0
`

// TestCLISameExitCodesAsFlock runs one script with flock(1) and with
// nfslock: a script switches by changing one word.
func TestCLISameExitCodesAsFlock(t *testing.T) {
	testenv.NeedTool(t, "flock")
	for _, tool := range []string{"flock", bin("nfslock")} {
		ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
		defer cancel()
		script := exec.CommandContext(ctx, "sh", "-c", flockScript, "sh", tool, filepath.Join(t.TempDir(), "lock"))
		script.Env = cliEnv()
		// On timeout, end the script's background jobs too.
		script.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		script.Cancel = func() error { return syscall.Kill(-script.Process.Pid, syscall.SIGKILL) }
		out, err := script.Output()
		if err != nil {
			t.Fatalf("script with %s: %v; output:\n%s", filepath.Base(tool), err, out)
		}
		if string(out) != flockScriptWant {
			t.Errorf("exit statuses with %s:\n%s\nwant:\n%s", filepath.Base(tool), out, flockScriptWant)
		}
	}
}
