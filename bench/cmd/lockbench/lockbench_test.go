package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nfslockfs/nfslockfs/internal/testenv"
)

// TestQuickRun runs every part of the harness with few samples, on the
// tools that need nothing beyond the tests' own (the peers from Debian are
// left to make bench), and checks that each part produced its results and
// that they render.
func TestQuickRun(t *testing.T) {
	testenv.NeedFUSE(t)
	testenv.NeedTool(t, "strace") // the cross-host part
	testenv.NeedTool(t, "flock")
	// Without -race: a race-enabled program takes up to a second to start
	// on a loaded machine, and the harness starts hundreds.
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(os.PathSeparator), "../../../cmd/...", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var out, stderr bytes.Buffer
	run := exec.Command(filepath.Join(bin, "lockbench"), "run", "-quick", "-bin", bin, "-peers", "../../peers",
		"-only", "^(true|go-noop|flock2|flock1|flock1-n|nfslock-.*|mount-go|mount-bash|mount-flock1|fuse-noop|control)$")
	run.Stdout, run.Stderr = &out, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("lockbench run: %v\n%s", err, stderr.String())
	}
	t.Logf("results:\n%s", out.String())
	var rs resultSet
	if err := rs.read(bytes.NewReader(out.Bytes())); err != nil {
		t.Fatal(err)
	}
	for _, n := range rs.notes {
		if strings.Contains(n, "stopped") || strings.Contains(n, "missing") {
			t.Errorf("note: %s", n)
		}
	}
	want := map[string][]string{
		"Cycle":         {"true", "go-noop", "flock2", "flock1-n", "nfslock-lib", "nfslock-cli-n", "mount-go", "mount-bash", "fuse-noop"},
		"Contend":       {"flock2", "nfslock-lib", "nfslock-cli", "mount-go", "control"},
		"Handoff":       {"flock1", "nfslock-lib", "nfslock-cli", "mount-go", "mount-bash", "mount-flock1"},
		"CrossHost":     {"nfslock-lib", "core-policy"},
		"CrossHostLoad": {"nfslock-lib", "core-policy"},
		"ScaleHeld":     {"mount-go"},
		"ScaleQueue":    {"mount-go"},
	}
	for _, tb := range rs.tables {
		for _, r := range tb.rows {
			want[tb.name] = slices.DeleteFunc(want[tb.name], func(s string) bool { return s == r.name })
			if tb.name == "Contend" {
				overlaps := r.samples["overlaps"][0]
				if (r.name == "control") != (overlaps > 0) {
					t.Errorf("Contend of %s: %v overlaps", r.name, overlaps)
				}
			}
		}
	}
	for table, rows := range want {
		if len(rows) > 0 {
			t.Errorf("table %s lacks rows %v", table, rows)
		}
	}
	var md bytes.Buffer
	rs.markdown(&md)
	if !strings.Contains(md.String(), "| mount-go |") || !strings.Contains(string(rs.chartData()), `"mount-go"`) {
		t.Errorf("the report lacks the mount:\n%s\n%s", md.String(), rs.chartData())
	}
}

// TestReadGoBench checks that report reads go test -bench output, failed
// benchmarks included: their failure is a note, the others' rows stay.
func TestReadGoBench(t *testing.T) {
	out := "pkg: example.com/m/fusefs\nBenchmarkA-2   \t--- FAIL: BenchmarkA\n    x_test.go:1: broken\n" +
		"--- FAIL: BenchmarkA-2\nBenchmarkB-2 \t 100\t 2500 ns/op\t 2.0 p50-µs\nBenchmarkB-2 \t 100\t 3500 ns/op\t 3.0 p50-µs\n"
	var rs resultSet
	if err := rs.read(strings.NewReader(out)); err != nil {
		t.Fatal(err)
	}
	if len(rs.notes) != 1 || !strings.Contains(rs.notes[0], "BenchmarkA-2 of package fusefs failed") {
		t.Errorf("notes %q, want one for BenchmarkA", rs.notes)
	}
	if len(rs.tables) != 1 || len(rs.tables[0].rows) != 1 || rs.tables[0].rows[0].name != "B" {
		t.Fatalf("tables %+v, want one row B", rs.tables)
	}
	var md bytes.Buffer
	rs.markdown(&md)
	if !strings.Contains(md.String(), "| B | 2 | 100 | 2.5 µs | 2 µs |") {
		t.Errorf("markdown:\n%s", md.String())
	}
}
