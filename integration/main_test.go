// Package integration drives the built nfslock and nfslockfs binaries as a
// user would: by exec, through the kernel, with real signals.
package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binDir holds the binaries built once for the whole test run.
var binDir string

// binDirVar names the environment variable that gives binDir instead of
// building the binaries: the real-NFS guest (realnfs_test.go) runs this test
// binary with the binaries the host built.
const binDirVar = "NFSLOCKFS_INTEGRATION_BIN"

func TestMain(m *testing.M) {
	if dir := os.Getenv(binDirVar); dir != "" {
		binDir = dir
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "nfslock-integration-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := exec.Command("go", "build", "-race", "-o", dir+string(os.PathSeparator), "../cmd/...")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// bin returns the path of the built binary name ("nfslock", "nfslockfs").
func bin(name string) string { return filepath.Join(binDir, name) }
