// Package testenv decides whether tests that need the machine's privileges
// can run, so that they skip with a reason on a developer's laptop but fail
// in CI, where NFSLOCKFS_REQUIRE_FUSE=1 promises the capability is there
// (and NFSLOCKFS_REQUIRE_NFS=1 the real-NFS rig).
package testenv

import (
	"os"
	"os/exec"
	"testing"

	"github.com/nfslockfs/nfslockfs/internal/nfsrig"
)

// RequireFUSEVar is the environment variable that turns a missing FUSE
// capability from a skip into a failure.
const RequireFUSEVar = "NFSLOCKFS_REQUIRE_FUSE"

// NeedFUSE skips t unless this process is root and /dev/fuse opens; when
// NFSLOCKFS_REQUIRE_FUSE=1 it fails t instead of skipping.
func NeedFUSE(t testing.TB) {
	t.Helper()
	if reason := fuseUnavailable(); reason != "" {
		missing(t, reason)
	}
}

// NeedRoot skips t unless this process is root (for namespaces, mounts);
// when NFSLOCKFS_REQUIRE_FUSE=1 it fails t instead.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root")
	}
}

func fuseUnavailable() string {
	if os.Geteuid() != 0 {
		return "needs root to mount FUSE filesystems"
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return "needs /dev/fuse: " + err.Error()
	}
	f.Close()
	return ""
}

func missing(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(RequireFUSEVar) == "1" {
		t.Fatalf("%s, and %s=1 requires it", reason, RequireFUSEVar)
	}
	t.Skip(reason)
}

// NeedTool skips t unless the command name is on PATH; when
// NFSLOCKFS_REQUIRE_FUSE=1 (CI, which installs every tool the tests use)
// it fails t instead.
func NeedTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		missing(t, "needs "+name+": "+err.Error())
	}
}

// RequireNFSVar is the environment variable that turns a missing real-NFS
// rig (package nfsrig) from a skip into a failure.
const RequireNFSVar = "NFSLOCKFS_REQUIRE_NFS"

// NeedRealNFS skips t unless the real-NFS rig can boot its guest here (see
// nfsrig.Unavailable for what it needs); when NFSLOCKFS_REQUIRE_NFS=1 it
// fails t instead.
func NeedRealNFS(t testing.TB) {
	t.Helper()
	if reason := nfsrig.Unavailable(); reason != "" {
		if os.Getenv(RequireNFSVar) == "1" {
			t.Fatalf("%s, and %s=1 requires it", reason, RequireNFSVar)
		}
		t.Skip(reason)
	}
}
