package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// cliLease is the lease of the CLI's lease tests.
const cliLease = 2 * time.Second

// leaseDirectory returns a fresh directory whose locks are leases.
func leaseDirectory(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, nfslock.LeaseFile), []byte(cliLease.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// COMMAND finds the lock's path, and in a lease directory a token that
// grows with every acquisition; elsewhere it has no token.
func TestCLILeaseEnvironment(t *testing.T) {
	const script = `echo "${NFSLOCK_TOKEN-none} $NFSLOCK_PATH"`
	dir := leaseDirectory(t)
	for want := 1; want <= 3; want++ {
		r := runCLI(t, dir, "lock", "sh", "-c", script)
		if got := strconv.Itoa(want) + " " + filepath.Join(dir, "lock") + "\n"; r.code != 0 || r.stdout != got {
			t.Errorf("acquisition %d: exit %d, COMMAND saw %q, want %q; stderr: %s", want, r.code, r.stdout, got, r.stderr)
		}
	}
	plain := t.TempDir()
	if r := runCLI(t, plain, "lock", "sh", "-c", script); r.stdout != "none "+filepath.Join(plain, "lock")+"\n" {
		t.Errorf("outside a lease directory COMMAND saw %q; want no token", r.stdout)
	}
	assertNothingLeft(t, plain)
}

// status shows the lease by the server's clock, and the token.
func TestCLIStatusShowsLease(t *testing.T) {
	dir := leaseDirectory(t)
	runCLI(t, dir, "lock", "true") // token 1
	h := startHolder(t, dir, []string{"lock"}, "echo $$; read -r _")
	defer h.release()
	time.Sleep(cliLease / 2)
	r := runCLI(t, dir, "status", "lock")
	for _, want := range []string{"state: alive\n", "token: 2\n", "lease: 2s\n", "renewed: ", "renewed-ago: ", "expires-in: "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	r = runCLI(t, dir, "status", "--json", "lock")
	var s struct {
		Token      uint64   `json:"token"`
		Lease      float64  `json:"lease_seconds"`
		RenewedAgo *float64 `json:"renewed_ago_seconds"`
		ExpiresIn  *float64 `json:"expires_in_seconds"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	if s.Token != 2 || s.Lease != cliLease.Seconds() || s.RenewedAgo == nil || s.ExpiresIn == nil ||
		*s.RenewedAgo < 0 || *s.RenewedAgo > cliLease.Seconds()/2 || *s.ExpiresIn < cliLease.Seconds()/2 {
		t.Errorf("status --json: %s; want token 2, a lease renewed within a third of it", r.stdout)
	}
}

// A lost lease stops COMMAND (and what it started: its process group) with
// SIGTERM, or SIGKILL when it ignores that, and nfslock exits 75 saying
// why, removing nothing of the lock that replaced its own.
func TestCLILeaseLossStopsCommand(t *testing.T) {
	for _, tc := range []struct {
		name, trap, want string
	}{
		{"SIGTERM", `trap 'echo got-TERM; kill $child; exit 0' TERM`, "got-TERM"},
		{"SIGKILL after the grace", `trap '' TERM`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := leaseDirectory(t)
			ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
			defer cancel()
			cmd := nfslockCmd(ctx, dir, "lock", "sh", "-c", tc.trap+`; sleep 600 & child=$!; echo "held $child"; while :; do sleep 0.05; done`)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(out)
			if !lines.Scan() || !strings.HasPrefix(lines.Text(), "held ") {
				t.Fatalf("COMMAND did not start: %q\n%s", lines.Text(), stderr.String())
			}
			child, _ := strconv.Atoi(strings.TrimPrefix(lines.Text(), "held "))
			// Another host breaks the lock and takes it.
			os.Remove(filepath.Join(dir, "lock.nfs_lock"))
			if err := os.WriteFile(filepath.Join(dir, "lock.nfs_lock"), nfslock.Record{Host: "elsewhere", Pid: 1, Message: "new"}.Encode(), 0o644); err != nil {
				t.Fatal(err)
			}
			taken := time.Now()
			var rest strings.Builder
			for lines.Scan() {
				rest.WriteString(lines.Text() + "\n")
			}
			cmd.Wait()
			stopped := time.Since(taken)
			t.Logf("COMMAND stopped %v after its lock was taken over (lease %v)", stopped.Round(time.Millisecond), cliLease)
			if code := exitStatus(cmd.ProcessState); code != 75 {
				t.Errorf("exit %d, want 75; stderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "lease lost") || !strings.Contains(stderr.String(), "SIGTERM") {
				t.Errorf("stderr does not say the lease was lost and COMMAND stopped:\n%s", stderr.String())
			}
			if !strings.Contains(rest.String(), tc.want) {
				t.Errorf("COMMAND's output %q lacks %q", rest.String(), tc.want)
			}
			if stopped > cliLease {
				t.Errorf("COMMAND ran %v after its lock was taken over; want it stopped within the lease", stopped)
			}
			// The group's other process is gone too (SIGKILL reaches it).
			time.Sleep(100 * time.Millisecond)
			if stat, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat"); err == nil && !isZombie(stat) {
				t.Errorf("COMMAND's child %d still runs: %s", child, stat)
				syscall.Kill(child, syscall.SIGKILL)
			}
			if rec, err := nfslock.ReadRecord(filepath.Join(dir, "lock")); err != nil || rec.Host != "elsewhere" {
				t.Errorf("the new holder's lock: %+v, %v", rec, err)
			}
		})
	}
}

// isZombie reports whether /proc/PID/stat describes a process that has
// died and waits to be reaped (state Z or X, after the command name).
func isZombie(stat []byte) bool {
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

// nfslock killed (-9) in a lease directory: nobody renews the lease any
// more, so COMMAND is told at once with SIGTERM.
func TestCLILeaseKilledNfslockStopsCommand(t *testing.T) {
	dir := leaseDirectory(t)
	marker := filepath.Join(dir, "term")
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	cmd := nfslockCmd(ctx, dir, "lock", "sh", "-c", `trap 'echo TERM >"$0"; exit 0' TERM; echo started; while :; do sleep 0.05; done`, marker)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "started\n" {
		t.Fatalf("COMMAND did not start: %q", line)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if data, err := os.ReadFile(marker); err == nil && string(data) == "TERM\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("COMMAND got no SIGTERM after nfslock was killed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
