package integration

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The exclusion checker. Every worker of the cluster tests, whatever way it
// takes the lock (the mount, the library, the CLI, flock(1)), exclusively
// (a writer) or shared (a reader), runs the same critical section once it
// believes it holds the lock, using files in a check directory on local
// storage that faults never touch:
//
//	tokens/ID   a file the worker flocks when it starts and never unlocks: the
//	            flock is dropped when the worker (and every child that shares
//	            its open files, as a shell's children share its lock file) is
//	            gone, so a free token means a dead worker. The worker removes
//	            it when it ends normally.
//	inside/M.ID one empty file per worker in its critical section, M being x
//	            for a writer and s for a reader. Each is made by one create
//	            and ended by one unlink, so a worker killed at any instant
//	            leaves its own file or nothing; nobody else's is changed.
//	log         append-only, one line per event, each a single O_APPEND write.
//
// The critical section:
//
//  1. list inside. Every file there of a worker P that this one may not be
//     inside with (any for a writer, a writer's for a reader) names a P that
//     was killed inside its section, before it could remove it: a correct
//     lock lets nobody in before P released it, and P removes its file
//     before releasing. So P must be dead: its token must exist and be free.
//     A missing token (P ended normally since) or one still held after 10 s
//     logs "alive ID P". (A reader's file may also stay from a reader killed
//     inside; readers leave it to the next writer to vouch for.)
//  2. create inside/M.ID, log "enter ID [P...]" (a writer) or "share ID
//     [P...]" (a reader), naming every P of step 1, and remove their files.
//  3. log "exit ID" or "unshare ID", remove inside/M.ID; then release the
//     lock.
//
// The checker replays the log: an "enter" while another worker is inside
// (entered, not exited), or a "share" while a writer is inside, is an
// overlap unless it names that worker as found dead; any line of a worker
// after it was found dead, an "exit" or "unshare" of a worker that is not
// inside that way, "alive", "lost" and "stale" lines are violations. A
// killed holder writes no "exit": the next conflicting "enter" or "share"
// vouches for its death instead. So the checker needs no clock and no
// knowledge of kills, and a lock that ever let a writer in with another
// live holder is caught by the log (they both write) or by the token (the
// second finds the first alive). Readers together are no violation; the
// replay counts how often they really were together (checkReport.overlaps).
//
// Other lines: "lost ID ERROR" (a library worker's release found its lock
// removed or taken over by someone else while it held it), "dead ID RECORD"
// (a library worker is about to try a lock whose record names a dead
// process of its own host: the attempt must remove it), "stale ID RECORD"
// (the attempt failed on that record: SPEC §5 forbids it), "error ID TEXT"
// (an acquire or release failed: expected only under injected faults).
const (
	checkLog     = "log"
	checkInside  = "inside"
	checkTokens  = "tokens"
	checkVictims = "victims" // host:pid:role files the chaos driver kills from; see cluster_chaos_test.go
	checkStop    = "stop"    // created to make workers finish their current cycle and end
)

// insideFile returns the name of the file in check's inside directory that
// says the worker id is in its critical section, as a reader if shared.
func insideFile(check, id string, shared bool) string {
	mode := "x"
	if shared {
		mode = "s"
	}
	return filepath.Join(check, checkInside, mode+"."+id)
}

// insideNow lists the workers whose files are in check's inside directory,
// each with whether it is a reader.
func insideNow(check string) (map[string]bool, error) {
	entries, err := os.ReadDir(filepath.Join(check, checkInside))
	if err != nil {
		return nil, err
	}
	m := make(map[string]bool, len(entries))
	for _, e := range entries {
		mode, id, _ := strings.Cut(e.Name(), ".")
		m[id] = mode == "s"
	}
	return m, nil
}

// newCheckDir makes a check directory for one run.
func newCheckDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, sub := range []string{checkTokens, checkVictims, checkInside} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, checkLog), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkReport is what the log shows.
type checkReport struct {
	cycles         int            // critical sections entered, shared ones included
	byRole         map[string]int // cycles by worker role
	shared         int            // of the cycles, those entered as a reader
	overlaps       int            // shared sections entered while a reader of another host was inside, both exiting later
	maxReaders     int            // the most readers inside at once (of those that exited)
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
	shared := ""
	if r.shared > 0 {
		shared = fmt.Sprintf(", %d shared (%d entered beside a reader of another host, at most %d readers at once)", r.shared, r.overlaps, r.maxReaders)
	}
	return fmt.Sprintf("%d cycles (%s)%s, %d after a holder killed inside, %d attempts met a dead local holder's record, %d errors, %d violations",
		r.cycles, strings.Join(roles, " "), shared, r.foundDead, r.deadSeen, len(r.errors), len(r.violations))
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
	inside := map[string]bool{} // the workers in their critical sections: whether each is a reader
	dead := map[string]bool{}   // workers found dead by a later holder
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
		case "enter", "share":
			shared := kind == "share"
			r.cycles++
			r.byRole[roleOf(id)]++
			if shared {
				r.shared++
			}
			for _, prev := range f[2:] {
				dead[prev] = true
				delete(inside, prev)
				r.foundDead++
			}
			for _, other := range slices.Sorted(maps.Keys(inside)) {
				if !shared || !inside[other] {
					violate(n, "%s entered while %s was inside", id, other)
				}
			}
			inside[id] = shared
		case "exit", "unshare":
			if shared, in := inside[id]; !in || shared != (kind == "unshare") {
				violate(n, "%s left a section it was not inside that way (inside: %v)", id, inside)
			}
			delete(inside, id)
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
	r.overlaps, r.maxReaders = readerOverlaps(lines)
	return r
}

// readerOverlaps counts, among the shared sections that ended with an
// "unshare" (so their readers were alive throughout), those entered while
// another such reader of another host was inside, and the most such
// readers inside at once: that readers really shared the lock, across
// hosts.
func readerOverlaps(lines []string) (overlaps, most int) {
	exited := map[string]bool{}
	for _, line := range lines {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "unshare" {
			exited[f[1]] = true
		}
	}
	inside := map[string]bool{}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 2 || !exited[f[1]] {
			continue
		}
		switch f[0] {
		case "share":
			if slices.ContainsFunc(slices.Collect(maps.Keys(inside)), func(other string) bool { return hostOf(other) != hostOf(f[1]) }) {
				overlaps++
			}
			inside[f[1]] = true
			most = max(most, len(inside))
		case "unshare":
			delete(inside, f[1])
		}
	}
	return overlaps, most
}

// roleOf returns the role in a worker ID HOST:PID:ROLE:NONCE.
func roleOf(id string) string {
	if f := strings.Split(id, ":"); len(f) == 4 {
		return f[2]
	}
	return "?"
}

// hostOf returns the host in a worker ID HOST:PID:ROLE:NONCE.
func hostOf(id string) string {
	host, _, _ := strings.Cut(id, ":")
	return host
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

		{"readers together", []string{"share a:1:r:1", "share b:1:r:1", "unshare a:1:r:1", "unshare b:1:r:1"}, false},
		{"reader then writer", []string{"share a:1:r:1", "unshare a:1:r:1", "enter b:1:w:1", "exit b:1:w:1"}, false},
		{"writer overlapping a reader", []string{"share a:1:r:1", "enter b:1:w:1", "exit b:1:w:1", "unshare a:1:r:1"}, true},
		{"writer overlapping the second of two readers", []string{"share a:1:r:1", "share c:1:r:1", "enter b:1:w:1 a:1:r:1", "exit b:1:w:1"}, true},
		{"reader overlapping a writer", []string{"enter b:1:w:1", "share a:1:r:1", "unshare a:1:r:1", "exit b:1:w:1"}, true},
		{"killed readers vouched for by a writer", []string{"share a:1:r:1", "share c:1:r:1", "enter b:1:w:1 a:1:r:1 c:1:r:1", "exit b:1:w:1"}, false},
		{"killed writer vouched for by two readers", []string{"enter b:1:w:1", "share a:1:r:1 b:1:w:1", "share c:1:r:1 b:1:w:1", "unshare a:1:r:1", "unshare c:1:r:1"}, false},
		{"killed reader left beside live readers", []string{"share a:1:r:1", "share c:1:r:1", "unshare c:1:r:1", "share d:1:r:1", "unshare d:1:r:1"}, false},
		{"reader vouched dead but alive", []string{"share a:1:r:1", "enter b:1:w:1 a:1:r:1", "exit b:1:w:1", "unshare a:1:r:1"}, true},
		{"a reader leaving as a writer", []string{"share a:1:r:1", "exit a:1:r:1"}, true},
		{"a writer leaving as a reader", []string{"enter a:1:w:1", "unshare a:1:w:1"}, true},
		{"unshare without share", []string{"unshare a:1:r:1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkLines(tc.lines)
			if caught := len(r.violations) > 0; caught != tc.caught {
				t.Errorf("violations %q; want some: %v", r.violations, tc.caught)
			}
		})
	}
}

// The checker counts readers together only when they really were: both
// alive (each wrote its unshare line) and of different hosts.
func TestClusterCheckerCountsReaderOverlaps(t *testing.T) {
	for _, tc := range []struct {
		name           string
		lines          []string
		overlaps, most int
	}{
		{"one after the other", []string{"share a:1:r:1", "unshare a:1:r:1", "share b:1:r:1", "unshare b:1:r:1"}, 0, 1},
		{"two hosts together", []string{"share a:1:r:1", "share b:1:r:1", "unshare a:1:r:1", "unshare b:1:r:1"}, 1, 2},
		{"one host twice", []string{"share a:1:r:1", "share a:2:r:1", "unshare a:1:r:1", "unshare a:2:r:1"}, 0, 2},
		{"beside a reader killed inside", []string{"share a:1:r:1", "share b:1:r:1", "unshare b:1:r:1"}, 0, 1},
		{"three hosts", []string{"share a:1:r:1", "share b:1:r:1", "share c:1:r:1", "unshare b:1:r:1", "unshare a:1:r:1", "unshare c:1:r:1"}, 2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checkLines(tc.lines)
			if len(r.violations) > 0 || r.overlaps != tc.overlaps || r.maxReaders != tc.most {
				t.Errorf("%d overlaps, at most %d readers, violations %q; want %d, %d, none", r.overlaps, r.maxReaders, r.violations, tc.overlaps, tc.most)
			}
		})
	}
}
