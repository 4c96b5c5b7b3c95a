//go:build linux

package nfslock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/hostsim"
	"github.com/nfslockfs/nfslockfs/internal/testenv"
	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// Leases across simulated hosts (package hostsim: own hostname and pids,
// one shared directory whose "server clock" is the machine's). The hosts'
// processes are this test binary (see TestChildProcess) playing the roles
// below; each may run with its local clock skewed (skewEnv).

// skewEnv skews a child's local clock by a Go duration, as a client whose
// clock is wrong.
const skewEnv = "NFSLOCK_TEST_SKEW"

func init() {
	childRoles["lease-section"] = leaseSectionChild
	childRoles["lease-breaker"] = leaseBreakerChild
	childRoles["lease-cycler"] = leaseCyclerChild
}

// applySkew sets the child's local clock from skewEnv.
func applySkew() error {
	s := os.Getenv(skewEnv)
	if s == "" {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	localClock.Store(skewedClock(d))
	return nil
}

// appendLine writes one line to the shared log in one O_APPEND write.
func appendLine(log *os.File, format string, args ...any) error {
	_, err := log.WriteString(fmt.Sprintf(format, args...) + "\n")
	return err
}

// leaseSectionChild (PATH LOG TAG) takes the lock, says "held TOKEN", and
// then, every 20 ms until its stdin ends, logs "TAG TOKEN CHECKED" after
// checking that it still holds the lock, CHECKED being the machine's clock
// (Unix nanoseconds, not the skewed one) when the check began. When it finds the lease lost it says
// "lost" and stops writing: the critical section of a careful holder.
func leaseSectionChild(args []string) error {
	if err := applySkew(); err != nil {
		return err
	}
	p, tag := args[0], args[2]
	log, err := os.OpenFile(args[1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := Acquire(ctx, p)
	if err != nil {
		return err
	}
	fmt.Println("held", l.Token())
	stdinDone := make(chan struct{})
	go func() { // ends with the process
		bufio.NewReader(os.Stdin).ReadString(0)
		close(stdinDone)
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stdinDone:
			return l.Unlock()
		case <-tick.C:
		}
		checked := time.Now()
		if err := l.Err(); err != nil {
			fmt.Println("lost")
			<-stdinDone
			return nil
		}
		if err := appendLine(log, "%s %d %d", tag, l.Token(), checked.UnixNano()); err != nil {
			return err
		}
	}
}

// leaseBreakerChild (PATH) obeys its stdin: "try" makes one TryLock and
// says "won TOKEN" or "held"; "release" releases and says "released".
func leaseBreakerChild(args []string) error {
	if err := applySkew(); err != nil {
		return err
	}
	var l *Lock
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "try":
			var err error
			l, err = TryLock(args[0])
			switch {
			case err == nil:
				fmt.Println("won", l.Token())
			case errors.Is(err, ErrLocked):
				fmt.Println("held")
			default:
				return err
			}
		case "release":
			if err := l.Unlock(); err != nil {
				return err
			}
			fmt.Println("released")
		}
	}
	return nil
}

// leaseCyclerChild (PATH LOG HOST) takes and releases the lock until the
// file LOG.stop exists, logging "enter TOKEN HOST" and "exit TOKEN" while
// it holds it, each after checking that it does.
func leaseCyclerChild(args []string) error {
	if err := applySkew(); err != nil {
		return err
	}
	p, host := args[0], args[2]
	log, err := os.OpenFile(args[1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	fmt.Println("ready")
	for {
		if _, err := os.Stat(args[1] + ".stop"); err == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		l, err := Acquire(ctx, p)
		cancel()
		if err != nil {
			return err
		}
		for _, line := range []string{fmt.Sprintf("enter %d %s", l.Token(), host), fmt.Sprintf("exit %d", l.Token())} {
			if err := l.Err(); err != nil {
				return err
			}
			if err := appendLine(log, "%s", line); err != nil {
				return err
			}
		}
		if err := l.Unlock(); err != nil {
			return err
		}
	}
}

// A hostChild is a child running in a simulated host.
type hostChild struct {
	name   string
	cmd    interface{ Wait() error }
	kill   func() error
	stdin  interface{ Close() error }
	write  func(string) error
	lines  chan string
	stderr *testutil.SyncBuffer
}

// startHostChild starts this test binary in h playing role, with env added.
func startHostChild(ctx context.Context, t *testing.T, h *hostsim.Host, role string, env []string, args ...string) *hostChild {
	t.Helper()
	cmd := h.Command(ctx, os.Args[0], append([]string{"-test.run=^TestChildProcess$", "--"}, args...)...)
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(append(os.Environ(), childRoleEnv+"="+role, "GORACE="+gorace), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &hostChild{name: h.Name() + "/" + role, cmd: cmd, stdin: stdin, lines: make(chan string, 64),
		stderr: new(testutil.SyncBuffer)}
	cmd.Stderr = c.stderr
	c.write = func(s string) error { _, err := stdin.Write([]byte(s + "\n")); return err }
	c.kill = func() error { return cmd.Process.Kill() }
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	go func() { // ends at end of output
		s := bufio.NewScanner(out)
		for s.Scan() {
			c.lines <- s.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return c
}

func (c *hostChild) errors() string { return c.stderr.String() }

// expect waits up to d for the child's next line, which must start with
// want, and returns it.
func (c *hostChild) expect(t *testing.T, want string, d time.Duration) string {
	t.Helper()
	select {
	case line, ok := <-c.lines:
		if !ok || !strings.HasPrefix(line, want) {
			t.Fatalf("%s said %q (open %v), want %q...\n%s", c.name, line, ok, want, c.errors())
		}
		return line
	case <-time.After(d):
		t.Fatalf("%s said nothing within %v, want %q\n%s", c.name, d, want, c.errors())
	}
	return ""
}

// leaseCluster starts hosts sharing a fresh lease directory of duration
// d; it returns the hosts, the lock path and a log file in it.
func leaseCluster(t *testing.T, hosts int, d time.Duration) (context.Context, []*hostsim.Host, string, string) {
	t.Helper()
	testenv.NeedRoot(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	p := leaseDir(t, d)
	logName := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(logName, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	var hs []*hostsim.Host
	for i := range hosts {
		h, err := hostsim.Start(ctx, fmt.Sprintf("lease-%c", 'a'+i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Kill() })
		// Each host its own /run/lock, as on a real cluster: the locks
		// that serialize removals within a host do not reach the others.
		if out, err := h.Command(ctx, "mount", "-t", "tmpfs", "hostlocks", "/run/lock").CombinedOutput(); err != nil {
			t.Fatalf("%s: mount /run/lock: %v: %s", h.Name(), err, out)
		}
		hs = append(hs, h)
	}
	return ctx, hs, p, logName
}

func tokenOf(t *testing.T, line string) uint64 {
	t.Helper()
	f := strings.Fields(line)
	n, err := strconv.ParseUint(f[len(f)-1], 10, 64)
	if err != nil {
		t.Fatalf("no token in %q", line)
	}
	return n
}

// A host freezes (every process stopped) while holding a lease: a waiter
// on another host gets the lock within the lease (and a poll), and the
// frozen holder, thawed, learns of the loss before it writes again. Client
// clocks minutes apart change none of it.
func TestLeaseClusterFrozenHolder(t *testing.T) {
	for _, skew := range [][2]string{{"", ""}, {"7m", "-5m"}} {
		t.Run("skew"+skew[0]+skew[1], func(t *testing.T) {
			ctx, hs, p, logName := leaseCluster(t, 2, testLease)
			holder := startHostChild(ctx, t, hs[0], "lease-section", []string{skewEnv + "=" + skew[0]}, p, logName, "A")
			tokenA := tokenOf(t, holder.expect(t, "held", 10*time.Second))
			waiter := startHostChild(ctx, t, hs[1], "lease-section", []string{skewEnv + "=" + skew[1]}, p, logName, "B")
			time.Sleep(testLease / 2) // the waiter waits, the holder renews
			if err := hs[0].Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			frozen := time.Now()
			tokenB := tokenOf(t, waiter.expect(t, "held", 3*testLease))
			got := time.Since(frozen)
			t.Logf("the waiter got the lock %v after the holder's host froze (lease %v)", got.Round(time.Millisecond), testLease)
			if got > testLease+time.Second {
				t.Errorf("the waiter got the lock %v after the freeze; want within the lease %v and a poll", got, testLease)
			}
			if tokenB <= tokenA {
				t.Errorf("token after the break %d, want more than %d", tokenB, tokenA)
			}
			time.Sleep(300 * time.Millisecond)
			if err := hs[0].Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			holder.expect(t, "lost", 5*time.Second)
			time.Sleep(300 * time.Millisecond) // the thawed holder would write now
			waiter.stdin.Close()
			holder.stdin.Close()
			if err := waiter.cmd.Wait(); err != nil {
				t.Errorf("waiter: %v\n%s", err, waiter.errors())
			}
			data, err := os.ReadFile(logName)
			if err != nil {
				t.Fatal(err)
			}
			// The freeze may stop the holder between its check and its
			// write: that one write lands late, with the old token, which a
			// fencing reader rejects (a holder stalled between check and
			// action is what tokens are for). Any write by the old holder
			// after the new one's first whose check began after the freeze
			// means two holders at once.
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			seenB := 0
			for i, line := range lines {
				var tag string
				var token uint64
				var checked int64
				if _, err := fmt.Sscanf(line, "%s %d %d", &tag, &token, &checked); err != nil {
					t.Fatalf("line %d: %q: %v", i+1, line, err)
				}
				switch {
				case tag == "B":
					seenB++
				case seenB > 0 && (token != tokenA || !time.Unix(0, checked).Before(frozen)):
					t.Fatalf("line %d: %q after the new holder's first line: two holders at once (frozen at %d)\n%s", i+1, line, frozen.UnixNano(), data)
				case seenB > 0:
					t.Logf("line %d: %q, checked before the freeze, landed after the new holder's first line", i+1, line)
				}
			}
			if seenB < 10 {
				t.Errorf("the new holder wrote %d lines, want many", seenB)
			}
		})
	}
}

// A host that dies whole while holding: the waiter gets the lock within the
// lease.
func TestLeaseClusterDeadHost(t *testing.T) {
	ctx, hs, p, logName := leaseCluster(t, 2, testLease)
	holder := startHostChild(ctx, t, hs[0], "lease-section", nil, p, logName, "A")
	holder.expect(t, "held", 10*time.Second)
	waiter := startHostChild(ctx, t, hs[1], "lease-section", nil, p, logName, "B")
	time.Sleep(testLease / 2)
	if err := hs[0].Kill(); err != nil {
		t.Fatal(err)
	}
	died := time.Now()
	waiter.expect(t, "held", 3*testLease)
	got := time.Since(died)
	t.Logf("the waiter got the lock %v after the holder's host died (lease %v)", got.Round(time.Millisecond), testLease)
	if got > testLease+time.Second {
		t.Errorf("the waiter got the lock %v after the host died; want within the lease %v and a poll", got, testLease)
	}
	waiter.stdin.Close()
	if err := waiter.cmd.Wait(); err != nil {
		t.Errorf("waiter: %v\n%s", err, waiter.errors())
	}
}

// Several hosts find one expired lease at the same moment and break it:
// exactly one of them takes the lock, round after round.
func TestLeaseClusterConcurrentBreakers(t *testing.T) {
	const rounds = 25
	ctx, hs, p, _ := leaseCluster(t, 3, testLease)
	var breakers []*hostChild
	for i, h := range hs {
		breakers = append(breakers, startHostChild(ctx, t, h, "lease-breaker", []string{skewEnv + "=" + strconv.Itoa(3*i-3) + "m"}, p))
	}
	wins := map[string]int{}
	var last uint64
	for round := range rounds {
		plantExpired(t, p, 2*testLease)
		for _, b := range breakers {
			if err := b.write("try"); err != nil {
				t.Fatal(err)
			}
		}
		var winner *hostChild
		for _, b := range breakers {
			line := b.expect(t, "", 10*time.Second)
			if !strings.HasPrefix(line, "won") {
				continue
			}
			if winner != nil {
				t.Fatalf("round %d: %s and %s both took the expired lock", round, winner.name, b.name)
			}
			winner = b
			if tok := tokenOf(t, line); tok <= last {
				t.Errorf("round %d: token %d after %d", round, tok, last)
			} else {
				last = tok
			}
		}
		if winner == nil {
			t.Fatalf("round %d: nobody took the expired lock", round)
		}
		wins[winner.name]++
		winner.write("release")
		winner.expect(t, "released", 10*time.Second)
	}
	t.Logf("%d rounds of 3 hosts breaking one expired lease at once: one winner each; wins %v", rounds, wins)
}

// Fencing tokens grow strictly across 1,000 acquisitions from 3 hosts
// while holders are killed (-9) at random moments.
func TestLeaseClusterTokensUnderChaos(t *testing.T) {
	const want = 1000
	ctx, hs, p, logName := leaseCluster(t, 3, testLease)
	cyclers := make([]*hostChild, len(hs))
	start := func(i int) {
		cyclers[i] = startHostChild(ctx, t, hs[i], "lease-cycler", nil, p, logName, hs[i].Name())
		cyclers[i].expect(t, "ready", 10*time.Second)
	}
	for i := range hs {
		start(i)
	}
	began, kills := time.Now(), 0
	for {
		time.Sleep(time.Duration(50+rand.N(100)) * time.Millisecond)
		data, err := os.ReadFile(logName)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(data), "enter "); n >= want {
			break
		}
		if time.Since(began) > time.Minute {
			t.Fatalf("fewer than %d acquisitions in a minute", want)
		}
		i := rand.N(len(hs))
		cyclers[i].kill()
		cyclers[i].cmd.Wait()
		kills++
		start(i)
	}
	os.WriteFile(logName+".stop", nil, 0o666)
	for _, c := range cyclers {
		c.cmd.Wait()
	}
	data, err := os.ReadFile(logName)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var last uint64
	inside := ""
	enters := 0
	for i, line := range lines {
		f := strings.Fields(line)
		switch f[0] {
		case "enter":
			tok := tokenOf(t, strings.Join(f[:2], " "))
			if tok <= last {
				t.Fatalf("line %d: token %d after %d:\n%s", i+1, tok, last, strings.Join(lines[max(0, i-5):i+1], "\n"))
			}
			last, inside = tok, f[1]
			enters++
		case "exit":
			if f[1] != inside {
				t.Fatalf("line %d: %q while %q holds the lock", i+1, line, inside)
			}
			inside = ""
		}
	}
	t.Logf("%d acquisitions from 3 hosts with %d kill -9 in %v; tokens strictly increasing up to %d",
		enters, kills, time.Since(began).Round(time.Millisecond), last)
}
