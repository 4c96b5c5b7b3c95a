package integration

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The exclusion checker. Every worker of the cluster tests, whatever way it
// takes the lock (the mount, the library, the CLI), runs the same critical
// section once it believes it holds the lock, using files in a check
// directory on local storage that faults never touch:
//
//	tokens/ID   a file the worker flocks when it starts and never unlocks: the
//	            flock is dropped when the worker (and every child that shares
//	            its open files, as a shell's children share its lock file) is
//	            gone, so a free token means a dead worker. The worker removes
//	            it when it ends normally.
//	occupant    the ID of the worker in the critical section, if any: one
//	            line, the ID padded with spaces to occupantWidth bytes. It is
//	            changed only by one write of a whole line at offset 0, never
//	            truncated, so a worker killed at any instant leaves it naming
//	            the worker before it or itself. (Truncating it and then
//	            writing, as a shell's > does, let a kill in between erase the
//	            name of a holder killed inside: the next holder found no one,
//	            and the log showed it entering while that holder was inside.)
//	log         append-only, one line per event, each a single O_APPEND write.
//
// The critical section:
//
//  1. read occupant. It names a worker P only if P was killed inside its
//     section, before it could clear it: a correct lock lets nobody in before
//     P released it, and P clears occupant before releasing. So P must be
//     dead: its token must exist and be free. A missing token (P ended
//     normally since) or one still held after 10 s logs "alive ID P".
//  2. set occupant to its ID, log "enter ID [P]".
//  3. log "exit ID", clear occupant (a line of spaces); then release the lock.
//
// The checker replays the log: an "enter" while another worker is inside
// (entered, not exited) is an overlap unless it names that worker as found
// dead; any line of a worker after it was found dead, an "exit" of a worker
// that is not inside, "alive", "lost" and "stale" lines are violations. A killed
// holder writes no "exit": the next "enter" vouches for its death instead.
// So the checker needs no clock and no knowledge of kills, and a lock that
// ever let two live holders in is caught by the log (they both write) or by
// the token (the second finds the first alive).
//
// Other lines: "lost ID ERROR" (a library worker's release found its lock
// removed or taken over by someone else while it held it), "dead ID RECORD"
// (a library worker is about to try a lock whose record names a dead
// process of its own host: the attempt must remove it), "stale ID RECORD"
// (the attempt failed on that record: SPEC §5 forbids it), "error ID TEXT"
// (an acquire or release failed: expected only under injected faults).
const (
	checkLog      = "log"
	checkOccupant = "occupant"
	checkTokens   = "tokens"
	checkVictims  = "victims" // host:pid:role files the chaos driver kills from; see cluster_chaos_test.go
	checkStop     = "stop"    // created to make workers finish their current cycle and end

	// occupantWidth is the width occupant's line is padded to, as a
	// decimal for printf: wider than any worker ID, so that a shorter ID
	// overwrites a longer one whole.
	occupantWidth = "100"
)

// setOccupant names id ("" for nobody) in check's occupant, in one write at
// offset 0 (see the top of this file).
func setOccupant(check, id string) error {
	f, err := os.OpenFile(filepath.Join(check, checkOccupant), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(fmt.Appendf(nil, "%-"+occupantWidth+"s\n", id), 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readOccupant returns the worker ID that check's occupant names, or "".
func readOccupant(check string) string {
	data, _ := os.ReadFile(filepath.Join(check, checkOccupant))
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(line)
}

// newCheckDir makes a check directory for one run.
func newCheckDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range []string{checkTokens, checkVictims} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{checkLog, checkOccupant} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkReport is what the log shows.
type checkReport struct {
	cycles         int            // critical sections entered
	byRole         map[string]int // cycles by worker role
	foundDead      int            // sections entered after a holder that was killed inside its own
	deadSeen       int            // attempts that met a record naming a dead process of their host
	errors         []string       // "error" lines
	violations     []string
	violationLines []int // index in the log of the line of each violation
}

func (r checkReport) String() string {
	roles := make([]string, 0, len(r.byRole))
	for _, role := range slices.Sorted(maps.Keys(r.byRole)) {
		roles = append(roles, fmt.Sprintf("%s=%d", role, r.byRole[role]))
	}
	return fmt.Sprintf("%d cycles (%s), %d after a holder killed inside, %d attempts met a dead local holder's record, %d errors, %d violations",
		r.cycles, strings.Join(roles, " "), r.foundDead, r.deadSeen, len(r.errors), len(r.violations))
}

// readCheckLog checks the log of a check directory.
func readCheckLog(t testing.TB, dir string) checkReport {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, checkLog))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	var lines []string
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return checkLines(lines)
}

// checkLines replays log lines (see the top of this file).
func checkLines(lines []string) checkReport {
	r := checkReport{byRole: map[string]int{}}
	inside := ""              // the worker in its critical section
	dead := map[string]bool{} // workers found dead by a later holder
	violate := func(n int, format string, args ...any) {
		r.violations = append(r.violations, fmt.Sprintf("line %d: %q: ", n+1, lines[n])+fmt.Sprintf(format, args...))
		r.violationLines = append(r.violationLines, n)
	}
	for n, line := range lines {
		f := strings.Fields(line)
		if len(f) < 2 {
			violate(n, "malformed line")
			continue
		}
		kind, id := f[0], f[1]
		if dead[id] && kind != "error" {
			violate(n, "%s acts after it was found dead", id)
		}
		switch kind {
		case "enter":
			r.cycles++
			r.byRole[roleOf(id)]++
			prev := ""
			if len(f) > 2 {
				prev = f[2]
				dead[prev] = true
				r.foundDead++
			}
			if inside != "" && inside != prev {
				violate(n, "%s entered while %s was inside", id, inside)
			}
			inside = id
		case "exit":
			if inside != id {
				violate(n, "%s exited but %q was inside", id, inside)
			}
			inside = ""
		case "alive":
			violate(n, "%s found the previous holder alive", id)
		case "dead":
			r.deadSeen++
		case "lost":
			violate(n, "the lock was removed or taken over while %s held it", id)
		case "stale":
			violate(n, "a record naming a dead process of %s's host survived a second acquire attempt", id)
		case "error":
			r.errors = append(r.errors, line)
		default:
			violate(n, "unknown event")
		}
	}
	return r
}

// roleOf returns the role in a worker ID HOST:PID:ROLE:NONCE.
func roleOf(id string) string {
	if f := strings.Split(id, ":"); len(f) == 4 {
		return f[2]
	}
	return "?"
}

// The checker itself must catch what it is there to catch.
func TestClusterCheckerCatchesViolations(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lines  []string
		caught bool // some violation is reported
	}{
		{"handoffs", []string{"enter a:1:x:1", "exit a:1:x:1", "enter b:1:x:1", "exit b:1:x:1"}, false},
		{"killed holder vouched for", []string{"enter a:1:x:1", "enter b:1:x:1 a:1:x:1", "exit b:1:x:1"}, false},
		{"killed before its enter line", []string{"enter b:1:x:1 a:1:x:1", "exit b:1:x:1"}, false},
		{"killed after its exit line", []string{"enter a:1:x:1", "exit a:1:x:1", "enter b:1:x:1 a:1:x:1", "exit b:1:x:1"}, false},
		{"errors are no violations", []string{"error a:1:x:1 open", "enter a:1:x:1", "exit a:1:x:1"}, false},
		{"overlap", []string{"enter a:1:x:1", "enter b:1:x:1", "exit b:1:x:1", "exit a:1:x:1"}, true},
		{"overlap vouching for another", []string{"enter a:1:x:1", "enter b:1:x:1 c:1:x:1", "exit b:1:x:1"}, true},
		{"found dead but was alive", []string{"enter a:1:x:1", "enter b:1:x:1 a:1:x:1", "exit a:1:x:1", "exit b:1:x:1"}, true},
		{"previous holder alive", []string{"enter a:1:x:1", "alive b:1:x:1 a:1:x:1"}, true},
		{"lock lost", []string{"enter a:1:x:1", "exit a:1:x:1", "lost a:1:x:1 our_lock_was_removed"}, true},
		{"dead record removed", []string{"dead b:1:x:1 ((host_b)(pid_2))", "enter b:1:x:1", "exit b:1:x:1"}, false},
		{"stale record kept", []string{"dead b:1:x:1 ((host_b)(pid_2))", "stale b:1:x:1 ((host_b)(pid_2))"}, true},
		{"exit without enter", []string{"exit a:1:x:1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkLines(tc.lines)
			if caught := len(r.violations) > 0; caught != tc.caught {
				t.Errorf("violations %q; want some: %v", r.violations, tc.caught)
			}
		})
	}
}

// A worker killed while it sets occupant must leave it naming the worker
// before it or itself, never no one: the next holder would then vouch for
// no one, and the log would show it entering while a holder killed inside
// is still inside. What a kill can leave behind, a reader can see: so the
// test reads occupant while each way of setting it (the shell workers', the
// Go workers') replaces one name with another, again and again, and must
// never find it naming no one.
func TestClusterCheckerOccupantNeverEmpty(t *testing.T) {
	const names = 2000
	for _, tc := range []struct {
		name string
		set  func(check string) error // sets occupant to w1 ... wN
	}{
		{"shell", func(check string) error {
			cmd := exec.Command("bash", "-c", bashWorkerLib+`for ((i = 1; i <= N; i++)); do occupy "w$i"; done`)
			cmd.Env = append(os.Environ(), "CHECK="+check, fmt.Sprintf("N=%d", names))
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}},
		{"go", func(check string) error {
			for i := 1; i <= names; i++ {
				if err := setOccupant(check, fmt.Sprintf("w%d", i)); err != nil {
					return err
				}
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := newCheckDir(t)
			if err := setOccupant(check, "w0"); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- tc.set(check) }()
			reads, empty := 0, 0
			for finished := false; !finished; reads++ {
				select {
				case err := <-done:
					if err != nil {
						t.Fatal(err)
					}
					finished = true
				default:
				}
				if readOccupant(check) == "" {
					empty++
				}
			}
			if empty > 0 {
				t.Errorf("%d of %d reads found occupant naming no one while %d names replaced each other", empty, reads, names)
			}
			t.Logf("%d reads while %d names replaced each other", reads, names)
			if got, want := readOccupant(check), fmt.Sprintf("w%d", names); got != want {
				t.Errorf("occupant names %q at the end, want %q", got, want)
			}
		})
	}
}
