package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/nfsrig"
	"github.com/nfslockfs/nfslockfs/internal/testenv"
)

// TestRealNFS runs the cluster scenarios on real NFS: the Linux kernel's NFS
// server and client, NFSv3 and NFSv4.2, one client mount per simulated host
// (package nfsrig boots the guest that has them). On the host it boots the
// guest and runs this test binary there, which runs TestRealNFS again: in
// the guest, the scenarios themselves, a subtest per NFS version. The
// guest's results come back as subtests of the host's TestRealNFS.
func TestRealNFS(t *testing.T) {
	if nfsrig.InGuest() {
		t.Run("v3", func(t *testing.T) { realNFSScenarios(t, "3") })
		t.Run("v4.2", func(t *testing.T) { realNFSScenarios(t, "4.2") })
		return
	}
	testenv.NeedRealNFS(t)
	if err := os.MkdirAll(nfsrig.Cache(), 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(nfsrig.Cache(), "job-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The guest's /tmp is its own: what it runs goes in the job directory.
	for _, f := range []struct{ src, dst string }{
		{self, "integration.test"}, {bin("nfslock"), "bin/nfslock"}, {bin("nfslockfs"), "bin/nfslockfs"},
	} {
		copyExecutable(t, f.src, filepath.Join(dir, f.dst))
	}
	// lockbench's workers: the library's and Core's cycles to count.
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "bin")+"/", "../bench/cmd/lockbench")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building lockbench: %v\n%s", err, out)
	}
	// The scenarios run in a copy of this package's directory: the checkout
	// may itself be under the host's /tmp, which the guest does not see.
	wd := filepath.Join(dir, "integration")
	if err := os.CopyFS(filepath.Join(wd, "testdata"), os.DirFS("testdata")); err != nil {
		t.Fatal(err)
	}
	// The guest runs what the host's -run selects: TestRealNFS/v4.2/chaos
	// boots it for that scenario only.
	run := "^TestRealNFS$"
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" {
		run = f.Value.String()
	}
	ctx, cancel := context.WithTimeout(t.Context(), realNFSLimit)
	defer cancel()
	start := time.Now()
	res, err := nfsrig.Run(ctx, nfsrig.Job{
		Dir:  dir,
		Argv: []string{filepath.Join(dir, "integration.test"), "-test.run=" + run, "-test.v=test2json", "-test.count=1", "-test.timeout=" + (realNFSLimit - time.Minute).String()},
		Env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), binDirVar + "=" + filepath.Join(dir, "bin"),
			testenv.RequireFUSEVar + "=1"},
		WorkDir: wd,
		Console: &lineLogger{t: t, prefix: "guest console: "},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest booted, ran the scenarios and exited %d in %v", res.Exit, time.Since(start).Round(time.Second))
	mirrorGuestTests(t, res.Output)
	if res.Exit != 0 && !t.Failed() {
		t.Errorf("the guest's test binary exited %d:\n%s", res.Exit, res.Output)
	}
}

// realNFSLimit bounds the guest's whole run: boot, every scenario on both
// versions, power-off. On a 2-core machine that other suites' guests loaded
// (load average 3 to 56) a whole run took 15m47s, and another was cut short
// after 15 minutes (docs/testing.md, "Real NFS"); make test's -timeout for
// TestRealNFS is above this limit.
const realNFSLimit = 20 * time.Minute

// realNFSScenarios runs, in the guest, the cluster scenarios on real NFS
// with NFS version vers.
func realNFSScenarios(t *testing.T, vers string) {
	t.Run("exclusion", func(t *testing.T) {
		const cycles = 6
		c := newCluster(t, clusterConfig{hosts: 3, daemons: true, limit: 5 * time.Minute, nfsVers: vers})
		r := runExclusion(t, c, cycles, 0)
		if want := len(c.nodes) * len(workerRoles) * cycles; r.cycles != want {
			t.Errorf("%d critical sections logged, want %d", r.cycles, want)
		}
	})
	t.Run("flock", func(t *testing.T) {
		// flock(1) through each host's mount, as scripts lock: a scenario
		// of its own, since as a fifth worker of "exclusion" it made that
		// run too long for the emulated guest (see workerRoles).
		const cycles = 4
		roles := []string{"mount-flock"}
		c := newCluster(t, clusterConfig{hosts: 3, daemons: true, limit: 3 * time.Minute, nfsVers: vers})
		r := runExclusionOf(t, c, roles, cycles, 0)
		if want := len(c.nodes) * len(roles) * cycles; r.cycles != want {
			t.Errorf("%d critical sections logged, want %d", r.cycles, want)
		}
	})
	t.Run("roundtrips", func(t *testing.T) { realNFSRoundTrips(t, vers) })
	t.Run("handoff", func(t *testing.T) { realNFSHandoffs(t, vers, 6, 3) })
	t.Run("across-hosts", func(t *testing.T) { realNFSAcrossHosts(t, vers) })
	t.Run("server-restart", func(t *testing.T) { realNFSServerRestart(t, vers) })
	t.Run("connection-cuts", func(t *testing.T) { realNFSConnectionCuts(t, vers) })
	t.Run("latency", func(t *testing.T) { realNFSLatency(t, vers) })
	t.Run("chaos", func(t *testing.T) {
		// A process start costs the emulated guest about ten times what
		// it costs the host: kills come less often than on the host, so
		// that workers get to take the lock between them, and holders hold
		// longer, so that kills land inside the critical section too.
		c := newCluster(t, clusterConfig{hosts: 3, daemons: true, limit: 3 * time.Minute, nfsVers: vers, hold: 200 * time.Millisecond})
		r, kills := runChaos(t, c, 25*time.Second, 500*time.Millisecond)
		checkChaos(t, c, r, kills, false)
	})
}

// copyExecutable copies the program src to dst, creating dst's directory.
func copyExecutable(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// lineLogger logs every line written to it.
type lineLogger struct {
	t       *testing.T
	prefix  string
	partial []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		if line := strings.TrimRight(string(l.partial[:i]), "\r"); line != "" {
			l.t.Log(l.prefix + line)
		}
		l.partial = l.partial[i+1:]
	}
}

// A testEvent is a line of go test -json output (cmd/test2json).
type testEvent struct {
	Action string
	Test   string
	Output string
}

// mirrorGuestTests makes every subtest that the guest's TestRealNFS ran
// (output is its -test.v=test2json output) a subtest of t with the same
// name, output and result.
func mirrorGuestTests(t *testing.T, output string) {
	t.Helper()
	conv := exec.Command("go", "tool", "test2json")
	conv.Stdin = strings.NewReader(output)
	events, err := conv.Output()
	if err != nil {
		t.Fatalf("go tool test2json: %v\n%s", err, output)
	}
	type result struct {
		lines  []string
		action string // pass, fail or skip; "" if it never ended
	}
	results := map[string]*result{}
	var order []string
	s := bufio.NewScanner(bytes.NewReader(events))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		var e testEvent
		if err := json.Unmarshal(s.Bytes(), &e); err != nil {
			t.Fatalf("go tool test2json: %v: %s", err, s.Bytes())
		}
		name, ok := strings.CutPrefix(e.Test, "TestRealNFS/")
		if !ok {
			if e.Action == "output" && e.Test != "TestRealNFS" && !strings.HasPrefix(e.Output, "=== ") {
				t.Log("guest: " + strings.TrimRight(e.Output, "\n")) // a failure outside the tests, a panic
			}
			continue
		}
		r := results[name]
		if r == nil {
			r = new(result)
			results[name] = r
			order = append(order, name)
		}
		switch e.Action {
		case "output":
			if line := strings.TrimSpace(e.Output); line != "" && !strings.HasPrefix(line, "=== ") && !strings.HasPrefix(line, "--- ") {
				r.lines = append(r.lines, line)
			}
		case "pass", "fail", "skip":
			r.action = e.Action
		}
	}
	var mirror func(t *testing.T, parent string)
	mirror = func(t *testing.T, parent string) {
		for _, name := range order {
			rel, ok := strings.CutPrefix(name, parent)
			if !ok || rel == "" || strings.Contains(rel, "/") {
				continue
			}
			r := results[name]
			t.Run(rel, func(t *testing.T) {
				for _, line := range r.lines {
					t.Log(line)
				}
				mirror(t, name+"/")
				switch r.action {
				case "fail":
					t.Fail()
				case "skip":
					t.Skip("skipped in the guest")
				case "":
					t.Error("never ended in the guest")
				}
			})
		}
	}
	mirror(t, "")
	if !slices.ContainsFunc(order, func(name string) bool { return !strings.Contains(name, "/") }) {
		t.Error("the guest ran no scenario")
	}
}
