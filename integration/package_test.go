package integration

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// installTestVar lets TestPackage install its .deb into this machine. CI,
// root on a machine of its own, sets it; a developer's machine is left
// alone unless asked.
const installTestVar = "NFSLOCKFS_INSTALL_TEST"

// installedFiles are what the package must put on the machine.
var installedFiles = []string{
	"/usr/bin/nfslock",
	"/usr/bin/nfslockfs",
	"/usr/sbin/mount.nfslockfs",
	"/usr/share/man/man1/nfslock.1.gz",
	"/usr/share/man/man8/nfslockfs.8.gz",
	"/usr/share/man/man8/mount.nfslockfs.8.gz",
	"/usr/share/doc/nfslockfs/examples/systemd/nfslockfs.service",
	"/usr/share/doc/nfslockfs/examples/systemd/srv-nfslocks.mount",
	"/usr/share/doc/nfslockfs/operations.md",
}

// TestPackage builds the packages twice with make package and checks that
// the builds are byte for byte the same; then installs the .deb with dpkg
// -i, checks that the files land, that the man pages are rendered, that
// mount.nfslockfs is the daemon and that both binaries tell their version
// and commit; and purges it.
func TestPackage(t *testing.T) {
	if os.Getenv(installTestVar) != "1" {
		t.Skipf("installs a .deb into this machine with dpkg -i; set %s=1 to run it (.ci/run does)", installTestVar)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("%s=1, but dpkg -i needs root", installTestVar)
	}
	for _, tool := range []string{"make", "git", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s=1, but %s is missing: %v", installTestVar, tool, err)
		}
	}
	if exec.Command("dpkg", "-s", "nfslockfs").Run() == nil {
		t.Fatal("the nfslockfs package is already installed; this test would replace it and purge it")
	}

	first, second := makePackage(t), makePackage(t)
	for _, pattern := range []string{"*.deb", "*.rpm"} {
		a, b := packageFile(t, first, pattern), packageFile(t, second, pattern)
		if filepath.Base(a) != filepath.Base(b) || !bytes.Equal(mustRead(t, a), mustRead(t, b)) {
			t.Errorf("two builds of %s differ: %s and %s", pattern, a, b)
		}
	}
	if rpm := mustRead(t, packageFile(t, first, "*.rpm")); !bytes.HasPrefix(rpm, []byte{0xed, 0xab, 0xee, 0xdb}) {
		t.Errorf("the .rpm does not start with rpm's magic number")
	}

	deb := packageFile(t, first, "*.deb")
	mustRun(t, "dpkg", "-i", deb)
	t.Cleanup(func() {
		mustRun(t, "dpkg", "--purge", "nfslockfs")
		for _, f := range installedFiles {
			if _, err := os.Lstat(f); err == nil {
				t.Errorf("%s is still there after dpkg --purge", f)
			}
		}
	})
	for _, f := range installedFiles {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("after dpkg -i: %v", err)
		}
	}
	if target, err := os.Readlink("/usr/sbin/mount.nfslockfs"); err != nil || target != "/usr/bin/nfslockfs" {
		t.Errorf("/usr/sbin/mount.nfslockfs links to %q (%v), want /usr/bin/nfslockfs", target, err)
	}
	for page, header := range map[string]string{
		"/usr/share/man/man1/nfslock.1.gz":   ".TH nfslock 1 ",
		"/usr/share/man/man8/nfslockfs.8.gz": ".TH nfslockfs 8 ",
	} {
		if text := gunzip(t, page); !strings.Contains(text, header) || !strings.Contains(text, "--version") {
			t.Errorf("%s is not the rendered man page (no %s or --version):\n%.300s", page, header, text)
		}
	}
	// Go stamps the commit and a pseudo-version into binaries built in a
	// clone; not in a git worktree (whose .git is a file), where a build
	// says "(devel)".
	commit := strings.TrimSpace(mustRun(t, "git", "rev-parse", "HEAD"))[:12]
	fi, err := os.Stat("../.git")
	stamped := err == nil && fi.IsDir()
	for _, prog := range []string{"/usr/bin/nfslockfs", "/usr/bin/nfslock"} {
		out := mustRun(t, prog, "--version")
		name := filepath.Base(prog)
		t.Logf("%s --version: %s", prog, strings.TrimSpace(out))
		switch {
		case !strings.HasPrefix(out, name+" "):
			t.Errorf("%s --version = %q, want it to start with %q", prog, out, name)
		case stamped && !(strings.HasPrefix(out, name+" v") && strings.Contains(out, "revision "+commit)):
			t.Errorf("%s --version = %q, want a module version and the revision %s", prog, out, commit)
		}
	}
	// mount.nfslockfs is the daemon under mount(8)'s name: a fake mount
	// (-f) parses the options and does nothing.
	mustRun(t, "/usr/sbin/mount.nfslockfs", "-f", "/nonexistent", "/nonexistent", "-o", "defaults,allow_other,_netdev")
}

// makePackage runs make package into a fresh directory and returns it.
func makePackage(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out := mustRun(t, "make", "-C", "..", "package", "BIN="+dir)
	t.Logf("make package:\n%s", out[max(0, len(out)-600):])
	return filepath.Join(dir, "package")
}

func packageFile(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(m) != 1 {
		t.Fatalf("want one %s in %s, got %v", pattern, dir, m)
	}
	return m[0]
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func gunzip(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	text, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(text)
}
