package integration

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A user's session: lock with a shell redirection, look with cat, ls and
// stat, fail to remove it while held, release it.
func TestMountShellSession(t *testing.T) {
	d := startDaemon(t)
	out, err := d.shell(t, `
exec 9>"$MNT/nightly"
echo "pid $$"
cat "$MNT/nightly"
ls "$MNT"
stat -c 'stat %F %s' "$MNT/nightly"
rm "$MNT/nightly" 2>&1 | sed 's/.*: /rm: /'
echo "building" >&9
grep message: "$MNT/nightly"
exec 9>&-
sleep 0.1
ls -A "$BACKING" | wc -l | sed 's/^/left: /'
`)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	pid := strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "pid ")
	for _, want := range []string{
		"host: ", "pid: " + pid + "\n", "held-since: ", "message: bash -c",
		"\nnightly\n",
		"stat regular file ",
		"rm: Device or resource busy\n",
		"message: building\n",
		"left: 0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("session output lacks %q:\n%s", want, out)
		}
	}
}

// Two shells contend: the second waits until the first is killed (-9),
// then gets the lock.
func TestMountContentionAndKilledHolder(t *testing.T) {
	d := startDaemon(t)
	holder, held := d.background(t, `exec 9>"$MNT/lock"; echo held; exec sleep 60`)
	expectLine(t, held, "held")
	_, got := d.background(t, `exec 9>"$MNT/lock"; echo got; exec sleep 60`)
	expectNoLine(t, got, 300*time.Millisecond)
	holder.Process.Kill()
	expectLine(t, got, "got")
}

// kill -9 of a blocked waiter ends it at once, and it never holds the lock.
func TestMountKillBlockedWaiter(t *testing.T) {
	d := startDaemon(t)
	_, held := d.background(t, `exec 9>"$MNT/lock"; echo held; exec sleep 60`)
	expectLine(t, held, "held")
	waiter, _ := d.background(t, `exec 9>"$MNT/lock"; echo got`)
	time.Sleep(200 * time.Millisecond) // blocked in open
	waiter.Process.Kill()
	exited := make(chan struct{})
	go func() { waiter.Process.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(2 * time.Second):
		t.Fatal("a waiter killed with SIGKILL was still alive 2s later (stuck in the open)")
	}
}

// SIGINT reaches a shell blocked in `exec 9>lock`. Without a trap the shell
// dies at once. With one, the daemon fails the open with EINTR; bash runs
// the trap and, as it does for every redirection, opens again: the script
// keeps waiting, and gets the lock when it is free.
func TestMountSIGINTToWaiter(t *testing.T) {
	d := startDaemon(t)
	holder, held := d.background(t, `exec 9>"$MNT/lock"; echo held; exec sleep 60`)
	expectLine(t, held, "held")

	plain, _ := d.background(t, `exec 9>"$MNT/lock"; echo got`)
	time.Sleep(200 * time.Millisecond)
	plain.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { _, err := plain.Process.Wait(); done <- err }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("a waiter without a SIGINT handler survived SIGINT for 2s")
	}

	trapped, lines := d.background(t, `trap 'echo trapped' INT; echo ready; exec 9>"$MNT/lock"; echo got`)
	expectLine(t, lines, "ready")
	time.Sleep(200 * time.Millisecond)
	trapped.Process.Signal(syscall.SIGINT)
	expectLine(t, lines, "trapped")
	expectNoLine(t, lines, 200*time.Millisecond)
	holder.Process.Kill()
	expectLine(t, lines, "got")
	if !strings.Contains(d.stderr.String(), "the caller got interrupt") {
		t.Errorf("the daemon did not fail the trapped open with EINTR:\n%s", d.stderr)
	}
}

// The mount and the nfslock CLI on the backing directory exclude each other.
func TestMountInteropWithCLI(t *testing.T) {
	d := startDaemon(t)
	out, err := d.shell(t, `
exec 9>"$MNT/shared"
"$NFSLOCK" -n "$BACKING/shared" true; echo "cli while mount holds: $?"
exec 9>&-
sleep 0.1
"$NFSLOCK" -n "$BACKING/shared" true; echo "cli when free: $?"
`)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"cli while mount holds: 1\n", "cli when free: 0\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	_, held := d.background(t, `exec "$NFSLOCK" "$BACKING/shared" sh -c 'echo held; exec sleep 60'`)
	expectLine(t, held, "held")
	if _, err := os.OpenFile(d.path("shared"), os.O_WRONLY|os.O_CREATE|syscall.O_NONBLOCK, 0o666); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("O_NONBLOCK open through the mount while the CLI holds the lock: %v, want EAGAIN", err)
	}
	if data, _ := os.ReadFile(d.path("shared")); !strings.Contains(string(data), "message: ") {
		t.Errorf("cat while the CLI holds the lock: %q", data)
	}
}

func TestMountJSONFormatAndLogs(t *testing.T) {
	d := startDaemon(t, "--format=json", "--log-format=json")
	out, err := d.shell(t, `exec 9>"$MNT/j"; cat "$MNT/j"; exec 9>&-; sleep 0.1`)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rec struct {
		Host      string `json:"host"`
		Pid       int    `json:"pid"`
		HeldSince string `json:"held_since"`
		Message   string `json:"message"`
		State     string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.Pid == 0 || rec.State != "alive" || rec.HeldSince == "" {
		t.Errorf("cat with --format=json: %q (%v)", out, err)
	}
	// One structured line per acquire and per release.
	events := map[string]map[string]any{}
	for line := range strings.Lines(d.stderr.String()) {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) == nil {
			events[e["msg"].(string)] = e
		}
	}
	for msg, fields := range map[string][]string{
		"lock acquired": {"path", "pid", "command", "waited"},
		"lock released": {"path", "pid", "command", "held"},
	} {
		e, ok := events[msg]
		if !ok {
			t.Errorf("no %q log line:\n%s", msg, d.stderr)
			continue
		}
		for _, f := range fields {
			if _, ok := e[f]; !ok {
				t.Errorf("%q log line lacks %s: %v", msg, f, e)
			}
		}
		if e["pid"] != float64(rec.Pid) {
			t.Errorf("%q names pid %v, want the shell's %d", msg, e["pid"], rec.Pid)
		}
	}
}

// SIGTERM with a holder and a waiter: the waiter's open fails with EINTR,
// the mount leaves the namespace, the holder keeps its lock until it exits,
// and then the daemon exits cleanly.
func TestMountSIGTERMWithHolder(t *testing.T) {
	d := startDaemon(t)
	holder, held := d.background(t, `exec 9>"$MNT/lock"; echo held; exec sleep 60`)
	expectLine(t, held, "held")
	// bash retries the open after EINTR; the retry finds the daemon stopped.
	_, waiting := d.background(t, `exec 9>"$MNT/lock" || echo "open failed"`)
	time.Sleep(200 * time.Millisecond)

	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case line := <-waiting:
		if !strings.HasSuffix(line, "Cannot send after transport endpoint shutdown") {
			t.Errorf("the waiter said %q, want ESHUTDOWN for its retried open", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked open did not fail within 5s of SIGTERM")
	}
	expectLine(t, waiting, "open failed")
	waitFor(t, "the mount leaves the namespace", func() bool { return !mounted(d.mnt) })
	time.Sleep(100 * time.Millisecond)
	if d.hasExited() {
		t.Fatalf("nfslockfs exited (%v) while a holder still had a lock open", d.err)
	}
	if !d.isHeld("lock") {
		t.Fatal("the live holder's lock was released by the shutdown")
	}

	holder.Process.Kill()
	// Reaped, as any parent reaps its children: a zombie whose parent has
	// yet to reap it still counts as holding its locks.
	holder.Wait()
	select {
	case <-d.exited:
		if d.err != nil {
			t.Errorf("nfslockfs exited with %v", d.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nfslockfs still running 10s after the last holder exited")
	}
	if d.isHeld("lock") {
		t.Error("the lock of a holder that died stayed held after the daemon settled")
	}
}

func TestMountCommandLineErrors(t *testing.T) {
	mnt := t.TempDir()
	full := t.TempDir()
	os.WriteFile(full+"/x", nil, 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"/nonexistent/backing", mnt}, 1, "backing directory"},
		{[]string{t.TempDir(), full}, 1, "not empty"},
		{[]string{t.TempDir()}, 2, "want BACKING_DIR and MOUNTPOINT"},
		{[]string{"--format=xml", t.TempDir(), mnt}, 2, "--format"},
		{[]string{"--bogus", t.TempDir(), mnt}, 2, "bogus"},
	} {
		cmd := exec.Command(bin("nfslockfs"), tc.args...)
		cmd.Env = cliEnv()
		out, _ := cmd.CombinedOutput()
		if code := exitStatus(cmd.ProcessState); code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("nfslockfs %q: exit %d, %q; want exit %d and %q", tc.args, code, out, tc.code, tc.want)
		}
	}
	if mounted(mnt) {
		syscall.Unmount(mnt, syscall.MNT_DETACH)
		t.Error("a failed start left a mount")
	}
}

// A forked child that shares the open file keeps the lock after the opener
// exits, as with flock(2). The record must then name a live process, or any
// other process of the host (nfslock, Core, a library user) would judge
// the lock stale and take it while the child holds it.
func TestMountForkedChildKeepsOpenLock(t *testing.T) {
	d := startDaemon(t)
	scratch := t.TempDir()
	out, err := runScript(t, `set -u
mkfifo $T/go
exec 3<>$T/go
bash -c 'exec 9>"$MNT/forked"; { read _ <$T/go; } >/dev/null 2>&1 & echo $! >$T/child'
sleep 0.3
"$NFSLOCK" -n "$BACKING/forked" true; echo "opener gone, child holds: $?"
grep -q "^pid: $(cat $T/child)\$" "$MNT/forked" && echo "record names the child"
echo go >$T/go
"$NFSLOCK" -w 5 "$BACKING/forked" true && echo "free once the child is gone"
`, "MNT="+d.mnt, "BACKING="+d.backing, "NFSLOCK="+bin("nfslock"), "T="+scratch)
	want := "opener gone, child holds: 1\nrecord names the child\nfree once the child is gone\n"
	if err != nil || out != want {
		t.Fatalf("script: %v\ngot:\n%s\nwant:\n%s", err, out, want)
	}
}
