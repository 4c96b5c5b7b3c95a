//go:build linux

package metrics

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/nfslockfs/nfslockfs/fusefs"
	"github.com/nfslockfs/nfslockfs/internal/buildinfo"
)

func TestMountCountsEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, buildinfo.Info{Version: "v1.2.3", Revision: "abc", GoVersion: "go1.26.0"})
	if err != nil {
		t.Fatal(err)
	}
	m.Waiting(1)
	m.Acquire(fusefs.Acquired, 2*time.Second)
	m.Waiting(-1)
	m.Acquire(fusefs.Busy, 0)
	m.BackingError(fusefs.OpRelease, syscall.ESTALE)
	m.Release(fusefs.Released, time.Minute)

	want := `
# HELP nfslockfs_acquires_total Opens for writing (attempts to take a lock), by how they ended: acquired, busy (EAGAIN), exists (EEXIST), interrupted, shutdown, error.
# TYPE nfslockfs_acquires_total counter
nfslockfs_acquires_total{result="acquired"} 1
nfslockfs_acquires_total{result="busy"} 1
nfslockfs_acquires_total{result="error"} 0
nfslockfs_acquires_total{result="exists"} 0
nfslockfs_acquires_total{result="interrupted"} 0
nfslockfs_acquires_total{result="shutdown"} 0
# HELP nfslockfs_backing_errors_total Operations on the backing directory that failed, by operation and errno.
# TYPE nfslockfs_backing_errors_total counter
nfslockfs_backing_errors_total{errno="ESTALE",operation="release"} 1
# HELP nfslockfs_build_info Always 1; its labels name the running build.
# TYPE nfslockfs_build_info gauge
nfslockfs_build_info{goversion="go1.26.0",revision="abc",version="v1.2.3"} 1
# HELP nfslockfs_locks_held Locks held through the mount now.
# TYPE nfslockfs_locks_held gauge
nfslockfs_locks_held 0
# HELP nfslockfs_waiters Opens blocked waiting for a held lock now.
# TYPE nfslockfs_waiters gauge
nfslockfs_waiters 0
`
	names := []string{"nfslockfs_acquires_total", "nfslockfs_backing_errors_total", "nfslockfs_build_info", "nfslockfs_locks_held", "nfslockfs_waiters"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("metric names break Prometheus's conventions: %v %v", problems, err)
	}
	// A second mount's metrics in the same registry collide: New says so.
	if _, err := New(reg, buildinfo.Info{}); err == nil {
		t.Error("New registered the same metrics twice without an error")
	}
}
