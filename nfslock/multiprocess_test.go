//go:build linux

package nfslock

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// Tests that need several OS processes re-run this test binary: each child
// runs TestChildProcess, which plays the role named by childRoleEnv with the
// arguments given after "--". A child talks to its parent by lines on its
// stdout, reads orders from its stdin, and may wait at a gate (startGate).

// childRoleEnv names the role a re-run test binary plays.
const childRoleEnv = "NFSLOCK_TEST_CHILD_ROLE"

// childRoles are the roles a child can play, by name. A role returns an
// error to make the child exit with status 1 and the error on stderr.
var childRoles = map[string]func(args []string) error{
	"cycles":         cyclesChild,        // this file
	"trylock-once":   tryLockOnceChild,   // cleaners_test.go
	"handoff-waiter": handoffWaiterChild, // bench_test.go
	"one-cycle":      oneCycleChild,      // bench_test.go
	"vouch-for":      vouchForChild,      // vouch_test.go
}

// TestChildProcess is the entry point of child processes, not a test: run
// without childRoleEnv it skips.
func TestChildProcess(t *testing.T) {
	role := os.Getenv(childRoleEnv)
	if role == "" {
		t.Skip("entry point of the child processes of multi-process tests")
	}
	run, ok := childRoles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
		os.Exit(2)
	}
	if err := run(flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "child %s, pid %d: %v\n", role, os.Getpid(), err)
		os.Exit(1)
	}
	os.Exit(0)
}

// child is a running child process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Scanner
	stderr bytes.Buffer
}

// startChild starts this test binary as a child playing role. ExtraFiles
// become the child's descriptors 3, 4, ... Ending ctx kills the child, so a
// hung child cannot hang the test; the child is also killed and reaped when
// the test ends, if the test has not waited for it.
func startChild(ctx context.Context, t testing.TB, role string, extraFiles []*os.File, args ...string) *child {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^TestChildProcess$", "--"}, args...)...)
	// The race detector sleeps a second before exiting, to catch races at
	// exit; children are many and short-lived.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), childRoleEnv+"="+role, "GORACE="+gorace)
	cmd.ExtraFiles = extraFiles
	cmd.WaitDelay = 5 * time.Second
	c := &child{cmd: cmd}
	cmd.Stderr = &c.stderr
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.stdout = bufio.NewScanner(out)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting child %s: %v", role, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return c
}

// readLine returns the child's next line on stdout.
func (c *child) readLine() (string, error) {
	if c.stdout.Scan() {
		return c.stdout.Text(), nil
	}
	if err := c.stdout.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("child %d: stdout closed: %w", c.cmd.Process.Pid, io.ErrUnexpectedEOF)
}

// expect reads the child's next line and fails the test unless it is want.
func (c *child) expect(t testing.TB, want string) {
	t.Helper()
	line, err := c.readLine()
	if err != nil || line != want {
		t.Fatalf("child %d said %q, %v; want %q\n%s", c.cmd.Process.Pid, line, err, want, c.stderr.Bytes())
	}
}

// waitAll closes the children's stdin, waits for them to exit and fails
// the test unless each exited with status 0.
func waitAll(t testing.TB, children ...*child) {
	t.Helper()
	for _, c := range children {
		c.stdin.Close()
	}
	for _, c := range children {
		if err := c.cmd.Wait(); err != nil {
			t.Errorf("child %d: %v\n%s", c.cmd.Process.Pid, err, c.stderr.Bytes())
		}
	}
}

// startGate returns a pipe for releasing children at one instant: pass
// gate to the children (as their descriptor 3), which block in
// waitAtGate; close open to let them all go.
func startGate(t testing.TB) (gate, open *os.File) {
	t.Helper()
	gate, open, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gate.Close(); open.Close() })
	return gate, open
}

// waitAtGate says "ready" to the parent and blocks until the parent opens
// the gate passed as descriptor 3.
func waitAtGate() error {
	gate := os.NewFile(3, "gate")
	defer gate.Close()
	fmt.Println("ready")
	_, err := io.Copy(io.Discard, gate)
	return err
}

// TestMultiProcessExclusion has several processes take and release one
// lock many times with Acquire, each logging "enter" and "exit" to a shared
// append-only log while it holds the lock, and proves from the log that no
// two holders ever overlapped and that every process finished.
func TestMultiProcessExclusion(t *testing.T) {
	const procs, cycles = 8, 200
	dir := t.TempDir()
	p := filepath.Join(dir, "lock")
	logName := filepath.Join(dir, "holders.log")
	if err := os.WriteFile(logName, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	gate, open := startGate(t)
	children := make([]*child, procs)
	pids := make([]int, procs)
	for i := range children {
		children[i] = startChild(ctx, t, "cycles", []*os.File{gate}, p, logName, strconv.Itoa(cycles))
		pids[i] = children[i].cmd.Process.Pid
	}
	for _, c := range children {
		c.expect(t, "ready")
	}
	start := time.Now()
	open.Close()
	waitAll(t, children...)
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("children did not finish in time: %v", ctx.Err())
	}
	t.Logf("%d processes × %d acquire/release cycles: %v (%v per cycle)", procs, cycles, elapsed.Round(time.Millisecond), elapsed/(procs*cycles))

	log, err := os.ReadFile(logName)
	if err != nil {
		t.Fatal(err)
	}
	handoffs, err := verifyHolderLog(log, pids, cycles)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the lock passed between processes %d times", handoffs)
	if got := testutil.Names(t, dir); len(got) != 1 {
		t.Errorf("afterwards the directory holds %q, want the log only", got)
	}
}

// cyclesChild is the "cycles" role: args are the lock path, the log's name
// and the number of cycles. Each cycle takes the lock with Acquire, checks
// that the record names this process, logs "enter PID I" and "exit PID I"
// (one write(2) each, to a file opened O_APPEND) and releases the lock.
func cyclesChild(args []string) error {
	p, logName := args[0], args[1]
	cycles, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	log, err := os.OpenFile(logName, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer log.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := waitAtGate(); err != nil {
		return err
	}
	pid := os.Getpid()
	for i := range cycles {
		l, err := Acquire(ctx, p)
		if err != nil {
			return fmt.Errorf("cycle %d: %w", i, err)
		}
		if _, err := fmt.Fprintf(log, "enter %d %d\n", pid, i); err != nil {
			return err
		}
		if rec, err := ReadRecord(p); err != nil || rec.Pid != pid {
			return fmt.Errorf("cycle %d: holding the lock, but its record is %+v, %v", i, rec, err)
		}
		if _, err := fmt.Fprintf(log, "exit %d %d\n", pid, i); err != nil {
			return err
		}
		if err := l.Unlock(); err != nil {
			return fmt.Errorf("cycle %d: %w", i, err)
		}
	}
	return nil
}

// verifyHolderLog checks a log of "enter PID I" and "exit PID I" lines:
// every enter is followed by the exit of the same holder and cycle before
// the next enter, each process's cycles come in order, and each of pids
// completed exactly cycles cycles. It returns how many times the lock
// passed from one process to another.
func verifyHolderLog(log []byte, pids []int, cycles int) (handoffs int, err error) {
	next := make(map[int]int) // pid → its next cycle
	for _, pid := range pids {
		next[pid] = 0
	}
	type holder struct{ pid, cycle int }
	var inside *holder
	last := 0 // pid of the last holder
	lines := strings.Split(strings.TrimSuffix(string(log), "\n"), "\n")
	for n, line := range lines {
		var kind string
		var h holder
		if _, err := fmt.Sscanf(line, "%s %d %d", &kind, &h.pid, &h.cycle); err != nil {
			return 0, fmt.Errorf("log line %d: %q: %v", n+1, line, err)
		}
		want, known := next[h.pid]
		switch {
		case !known:
			return 0, fmt.Errorf("log line %d: %q: unknown pid", n+1, line)
		case kind == "enter" && inside != nil:
			return 0, fmt.Errorf("log line %d: %q while pid %d holds the lock (cycle %d): two holders overlap", n+1, line, inside.pid, inside.cycle)
		case kind == "enter" && h.cycle != want:
			return 0, fmt.Errorf("log line %d: %q, want cycle %d of pid %d", n+1, line, want, h.pid)
		case kind == "enter":
			inside = &h
			if last != 0 && last != h.pid {
				handoffs++
			}
			last = h.pid
		case kind == "exit" && (inside == nil || *inside != h):
			return 0, fmt.Errorf("log line %d: %q, but the holder is %+v", n+1, line, inside)
		case kind == "exit":
			inside = nil
			next[h.pid]++
		default:
			return 0, fmt.Errorf("log line %d: %q: unknown event", n+1, line)
		}
	}
	if inside != nil {
		return 0, fmt.Errorf("log ends with pid %d inside (cycle %d)", inside.pid, inside.cycle)
	}
	for _, pid := range pids {
		if next[pid] != cycles {
			return 0, fmt.Errorf("pid %d completed %d cycles, want %d", pid, next[pid], cycles)
		}
	}
	return handoffs, nil
}

// TestVerifyHolderLog shows that the checker of TestMultiProcessExclusion
// catches what it is meant to.
func TestVerifyHolderLog(t *testing.T) {
	pids := []int{10, 20}
	good := "enter 10 0\nexit 10 0\nenter 20 0\nexit 20 0\nenter 20 1\nexit 20 1\nenter 10 1\nexit 10 1\n"
	if n, err := verifyHolderLog([]byte(good), pids, 2); n != 2 || err != nil {
		t.Errorf("a good log: %d handoffs, %v; want 2, nil", n, err)
	}
	for name, log := range map[string]string{
		"overlap":         "enter 10 0\nenter 20 0\nexit 10 0\nexit 20 0\n",
		"foreign exit":    "enter 10 0\nexit 20 0\n",
		"unfinished":      "enter 10 0\nexit 10 0\n",
		"left inside":     "enter 10 0\nexit 10 0\nenter 20 0\nexit 20 0\nenter 10 1\n",
		"cycle skipped":   "enter 10 1\nexit 10 1\n",
		"unknown process": "enter 30 0\nexit 30 0\n",
		"torn line":       "enter 10 0\nexienter 10 0\n",
	} {
		if _, err := verifyHolderLog([]byte(log), pids, 1); err == nil {
			t.Errorf("%s: not caught", name)
		}
	}
}
