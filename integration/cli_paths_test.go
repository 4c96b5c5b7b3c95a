package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// A helper file's name, or a path that names no lock file of its own, is a
// usage error for every command: taking x.nfs_lock as a lock name would
// rename its record over lock x's record and remove it on release.
func TestCLIRefusesPathsThatAreNoLock(t *testing.T) {
	dir := t.TempDir()
	h := startHolder(t, dir, []string{"x"}, holdScript)
	for _, args := range [][]string{
		{"-n", "x.nfs_lock", "true"},
		{"x.nfs_lock", "true"},
		{"-n", "x.0123456789abcdef0123456789abcdef.lock-attempt", "true"},
		{"-n", ".nfs00000000deadbeef", "true"},
		{"-n", "", "true"},
		{"-n", ".", "true"},
		{"-n", "..", "true"},
		{"-n", "/", "true"},
		{"status", ""},
		{"status", "x", "x.nfs_lock"},
		{"status", "."},
		{"unlock", "x.nfs_lock"},
		{"unlock", ""},
		{"break", "--force", "x.nfs_lock"},
		{"break", "--force", ""},
	} {
		r := runCLI(t, dir, args...)
		if r.code != 2 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "not a lock path") || r.stdout != "" {
			t.Errorf("nfslock %q: exit %d, stdout %q, stderr %q; want 2 and a one-line reason saying it is not a lock path", args, r.code, r.stdout, r.stderr)
		}
	}
	assertHeldBy(t, dir, "x", h.pid)
	if names := strings.Join(testutil.Names(t, dir), " "); names != "x x.nfs_lock x.nfs_readers" {
		t.Errorf("files in the lock directory: %s; want x x.nfs_lock x.nfs_readers (the exclusive holder's mark)", names)
	}
}

// d, d/, ./d and /abs/d are one lock.
func TestCLISpellingsOfOnePathAreOneLock(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := startHolder(t, dir, []string{"d/"}, holdScript)
	for _, p := range []string{"d", "./d", "d//", "d/.", filepath.Join(dir, "d")} {
		assertHeldBy(t, dir, p, h.pid)
	}
	if names := testutil.Names(t, filepath.Join(dir, "d")); len(names) > 0 {
		t.Errorf("files inside d: %q; want the lock d.nfs_lock beside it", names)
	}
	h.release()
	assertNothingLeft(t, filepath.Join(dir, "d"))
	if names := testutil.Names(t, dir); len(names) != 1 || names[0] != "d" {
		t.Errorf("after release: %q; want only d", names)
	}
}

// A missing directory is reported by its name, not by the name of a file
// the user never asked for.
func TestCLIMissingDirectoryIsNamed(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no/such")
	for _, args := range [][]string{
		{"-n", "no/such/lock", "true"},
		{"no/such/lock", "true"},
		{"status", "no/such/lock"},
		{"unlock", "no/such/lock"},
		{"break", "--force", "no/such/lock"},
	} {
		r := runCLI(t, dir, args...)
		want := 66
		if args[0] == "status" || args[0] == "unlock" || args[0] == "break" {
			want = 1
		}
		if r.code != want || !strings.Contains(r.stderr, "directory "+missing+": no such file or directory") || strings.Contains(r.stderr, "lock-attempt") {
			t.Errorf("nfslock %q: exit %d, stderr %q; want %d and an error naming the directory %s", args, r.code, r.stderr, want, missing)
		}
	}
}
