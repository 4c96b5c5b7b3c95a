package integration

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/testutil"
	"github.com/nfslockfs/nfslockfs/nfslock"
)

// SPEC §5, bad input. Each case is tried through the library (in this
// process), the CLI and the mount (in a simulated host): each must give a
// clear error or behave as a lock, nothing may be lost, and nothing may
// hang (every host command is bounded by shellTimeout; blocking waits are
// cut short with timeout(1) where waiting is the right answer).

// Lock files whose record no reader accepts: the lock is held by someone
// unknown (a Core v1 writer may be mid-write), so takers wait, readers show
// the bytes, and only an operator's break --force removes it.
func TestClusterBadRecords(t *testing.T) {
	c := newCluster(t, clusterConfig{hosts: 1, daemons: true, limit: 2 * time.Minute})
	n := c.nodes[0]
	for _, tc := range []struct {
		name   string
		record []byte
	}{
		{"corrupt", []byte("node17 4242\n")},
		{"empty", nil},
		{"huge", bytes.Repeat([]byte("x"), 1<<20)},
		{"huge-record", []byte(`((host node17)(pid 1)(message "` + strings.Repeat("m", nfslock.MaxRecordSize) + `"))`)},
	} {
		lock := filepath.Join(c.export, tc.name)
		if err := os.WriteFile(lock+nfslock.LockSuffix, tc.record, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := nfslock.TryLock(lock)
		if !errors.Is(err, nfslock.ErrLocked) || !errors.Is(err, nfslock.ErrCorrupt) || !strings.Contains(err.Error(), lock) {
			t.Errorf("%s: TryLock: %v; want an error naming the path that matches ErrLocked and ErrCorrupt", tc.name, err)
		}
		env := "NAME=" + tc.name
		out, _ := n.sh(`"$NFSLOCK" -n "$EXPORT/$NAME" true; echo "nonblock=$?"
"$NFSLOCK" -w 0.3 "$EXPORT/$NAME" true; echo "timeout=$?"
"$NFSLOCK" status "$EXPORT/$NAME" | head -c 300; echo
shown=$(cat "$MNT/$NAME"); echo "cat=$?"; echo "${shown:0:300}"
timeout 0.5 bash -c 'exec 9>"$MNT/$NAME"'; echo "open=$?"`, env)
		for _, want := range []string{"nonblock=1\n", "timeout=1\n", "state: corrupt\n", "raw: ", "cat=0\n", "open=124\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q (status, cat: the bytes; nfslock -n, -w and an open through the mount: held):\n%.2000s", tc.name, want, out)
			}
		}
		if data, err := os.ReadFile(lock + nfslock.LockSuffix); err != nil || !bytes.Equal(data, tc.record) {
			t.Errorf("%s: the lock file changed (%v)", tc.name, err)
		}
		if out, code := n.sh(`"$NFSLOCK" break --force "$EXPORT/$NAME" >/dev/null && timeout 10 bash -c 'exec 9>"$MNT/$NAME"'`, env); code != 0 {
			t.Errorf("%s: break --force, then taking the lock through the mount: exit %d: %s", tc.name, code, out)
		}
	}
	if left := c.leftoversOnceReleased(); len(left) > 0 {
		t.Errorf("files left in the export: %q", left)
	}
}

// Lock names that are awkward in shells and protocols, and names at the
// length limit (the suffixes add up to 46 bytes): they work everywhere; one
// byte more fails at once with an error that says why.
func TestClusterBadNames(t *testing.T) {
	c := newCluster(t, clusterConfig{hosts: 1, daemons: true, limit: 2 * time.Minute})
	n := c.nodes[0]
	for _, name := range []string{"with space", "new\nline", "tab\there", "\xff\xfe not UTF-8", "-dash", strings.Repeat("n", nfslock.MaxNameLen)} {
		lock := filepath.Join(c.export, name)
		l, err := nfslock.TryLock(lock)
		if err != nil {
			t.Errorf("TryLock(%q): %v", name, err)
		} else if err := l.Unlock(); err != nil {
			t.Errorf("Unlock(%q): %v", name, err)
		}
		out, code := n.sh(`"$NFSLOCK" -n -- "$EXPORT/$NAME" true || exit
exec 9>"$MNT/$NAME" || exit
grep -qx "pid: $$" "$MNT/$NAME" || { echo "cat does not show this shell"; exit 1; }
for f in "$MNT"/* "$MNT"/.*; do [ "$f" = "$MNT/$NAME" ] && echo listed; done
exec 9>&-`, "NAME="+name)
		if code != 0 || !strings.Contains(out, "listed") {
			t.Errorf("lock %q through the CLI and the mount: exit %d, want 0 and the name in the listing: %s", name, code, out)
		}
	}

	over := strings.Repeat("o", nfslock.MaxNameLen+1)
	if _, err := nfslock.TryLock(filepath.Join(c.export, over)); !errors.Is(err, syscall.ENAMETOOLONG) || !strings.Contains(err.Error(), "at most") {
		t.Errorf("TryLock of a name one byte too long: %v; want ENAMETOOLONG saying how long it may be", err)
	}
	out, _ := n.sh(`"$NFSLOCK" -w 600 "$EXPORT/$NAME" true; echo "cli=$?"
exec 9>"$MNT/$NAME"; echo "open=$?"`, "NAME="+over)
	for _, want := range []string{"at most", "cli=66\n", "File name too long", "open=1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("name one byte too long: output lacks %q:\n%s", want, out)
		}
	}
	time.Sleep(100 * time.Millisecond) // releases through the mount end after close returns
	if left := c.leftovers(); len(left) > 0 {
		t.Errorf("files left in the export: %q", left)
	}
}

// Symbolic links where the protocol expects files: a lock file that is a
// symlink (to someone's data) is held by no one who can be named, and is
// neither followed nor written through; a lock path P that is a symlink is
// locked without touching it or its target.
func TestClusterSymlinks(t *testing.T) {
	c := newCluster(t, clusterConfig{hosts: 1, daemons: true, limit: 2 * time.Minute})
	n := c.nodes[0]
	precious := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(precious, []byte("precious data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{"lockfile" + nfslock.LockSuffix, "path"} {
		if err := os.Symlink(precious, filepath.Join(c.export, link)); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := nfslock.TryLock(filepath.Join(c.export, "lockfile")); err == nil || !strings.Contains(err.Error(), "lockfile") {
		t.Errorf("TryLock of a lock whose lock file is a symlink: %v; want an error naming it", err)
	}
	out, _ := n.sh(`"$NFSLOCK" -w 0.3 "$EXPORT/lockfile" true; echo "cli=$?"
"$NFSLOCK" status "$EXPORT/lockfile"; echo "status=$?"
cat "$MNT/lockfile"; echo "cat=$?"
timeout 5 bash -c 'exec 9>"$MNT/lockfile"'; echo "open=$?"`)
	for _, want := range []string{"Too many levels of symbolic links", "open=1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("lock file that is a symlink: output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cli=0") || strings.Contains(out, "precious data") {
		t.Errorf("the CLI took, or something showed the target of, a lock file that is a symlink:\n%s", out)
	}
	t.Logf("a lock file that is a symlink, seen by the CLI and the mount:\n%s", out)
	if out, code := n.sh(`"$NFSLOCK" break --force "$EXPORT/lockfile"`); code != 0 {
		t.Errorf("break --force of a symlinked lock file: exit %d: %s", code, out)
	}

	l, err := nfslock.TryLock(filepath.Join(c.export, "path"))
	if err != nil {
		t.Errorf("TryLock of a path that is a symlink: %v", err)
	} else if err := l.Unlock(); err != nil {
		t.Errorf("Unlock: %v", err)
	}
	if out, code := n.sh(`"$NFSLOCK" -n "$EXPORT/path" true && timeout 10 bash -c 'exec 9>"$MNT/path"; cat "$MNT/path"'`); code != 0 {
		t.Errorf("locking a path that is a symlink through the CLI and the mount: exit %d: %s", code, out)
	}
	time.Sleep(100 * time.Millisecond) // releases through the mount end after close returns
	if data, err := os.ReadFile(precious); err != nil || string(data) != "precious data\n" {
		t.Errorf("the symlinks' target now holds %q (%v)", data, err)
	}
	if target, err := os.Readlink(filepath.Join(c.export, "path")); err != nil || target != precious {
		t.Errorf("the symlink at the lock path is gone or changed: %q, %v", target, err)
	}
	if left := c.leftovers(); len(left) != 1 {
		t.Errorf("export holds %q; want the symlink path only", left)
	}
}

// A read-only directory (EROFS) and one the user may not write (EACCES):
// permanent errors, reported at once even by a caller willing to wait.
func TestClusterReadOnlyAndDeniedDirs(t *testing.T) {
	ro, roMnt, allowMnt := t.TempDir(), testutil.MountpointDir(t), testutil.MountpointDir(t)
	c := newCluster(t, clusterConfig{hosts: 1, multiUser: true, limit: 2 * time.Minute})
	n := c.nodes[0]
	// nobody must reach the export, the binaries and the mountpoint.
	for _, dir := range []string{filepath.Dir(c.export), c.backing, binDir, filepath.Dir(allowMnt), allowMnt} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(c.export, "denied"), 0o755); err != nil {
		t.Fatal(err)
	}

	// A read-only filesystem, mounted in the host only (it goes with it).
	if out, code := n.sh(`mount -t tmpfs -o ro,size=64k tmpfs "$RO"`, "RO="+ro); code != 0 {
		t.Fatalf("mounting a read-only tmpfs: %s", out)
	}
	n.startNfslockfs(ro, roMnt)
	n.startNfslockfs(c.export, allowMnt, "--allow-other")
	asNobody := `setpriv --reuid=65534 --regid=65534 --clear-groups`
	out, _ := n.sh(`"$NFSLOCK" -w 600 "$RO/lock" true; echo "cli=$?"
exec 9>"$ROMNT/lock"; echo "open=$?"
`+asNobody+` "$NFSLOCK" -w 600 "$EXPORT/denied/lock" true; echo "nobody cli=$?"
`+asNobody+` bash -c 'exec 9>"$ALLOWMNT/denied/lock"'; echo "nobody open=$?"
`+asNobody+` "$NFSLOCK" status "$EXPORT/denied/lock"; echo "nobody status=$?"`,
		"RO="+ro, "ROMNT="+roMnt, "ALLOWMNT="+allowMnt)
	for _, want := range []string{
		"read-only file system", "cli=66\n", "Read-only file system", "open=1\n",
		"permission denied", "nobody cli=66\n", "Permission denied", "nobody open=1\n",
		"state: free\n", "nobody status=0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if left := c.leftovers(); len(left) != 1 {
		t.Errorf("export holds %q; want the directory denied only", left)
	}
}
