package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/testenv"
	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// rm through the mount never removes a backing file that is not a lock
// record: a data file, a symbolic link (to a file or a directory), a
// directory with files in it. A free lock's leftover record is removed.
func TestMountRmKeepsData(t *testing.T) {
	d := startDaemon(t)
	os.WriteFile(d.lockPath("data.csv"), []byte("a,b\n1,2\n"), 0o644)
	os.Symlink("data.csv", d.lockPath("filelink"))
	os.Mkdir(d.lockPath("dir"), 0o755)
	os.WriteFile(d.lockPath("dir/notes"), []byte("keep me\n"), 0o644)
	os.Symlink("dir", d.lockPath("dirlink"))
	os.WriteFile(d.lockPath("leftover"), []byte("((host h)(pid 1)(message m))"), 0o644)
	out, _ := d.shell(t, `
for f in data.csv filelink dirlink dir/notes; do rm -f "$MNT/$f"; echo "rm $f: $?"; done
rm -rf "$MNT/dir"; echo "rm -r dir: $?"
rm "$MNT/leftover"; echo "rm leftover: $?"
`)
	for _, want := range []string{"rm data.csv: 1", "rm filelink: 1", "rm dirlink: 1", "rm dir/notes: 1", "rm -r dir: 1", "rm leftover: 0"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "Operation not permitted") {
		t.Errorf("rm of data says:\n%s\nwant EPERM", out)
	}
	for _, name := range []string{"data.csv", "filelink", "dirlink", "dir/notes"} {
		if _, err := os.Lstat(d.lockPath(name)); err != nil {
			t.Errorf("backing %s: %v", name, err)
		}
	}
	if _, err := os.Lstat(d.lockPath("leftover")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the free lock's leftover record: %v, want removed", err)
	}
	if data, _ := os.ReadFile(d.lockPath("data.csv")); string(data) != "a,b\n1,2\n" {
		t.Errorf("data.csv now holds %q", data)
	}
}

// A symbolic link in the backing directory shows as one, and the mount
// never follows it: a link to a directory elsewhere on the export would
// lead to plain files that lock nothing.
func TestMountShowsSymlinks(t *testing.T) {
	d := startDaemon(t)
	elsewhere := t.TempDir()
	os.Symlink(elsewhere, d.lockPath("dirlink"))
	out, _ := d.shell(t, `
stat -c '%F' "$MNT/dirlink"
ls -F "$MNT" | grep dirlink
exec 9>"$MNT/dirlink/x" && echo "opened through the link"
`)
	for _, want := range []string{"symbolic link\n", "dirlink@\n", "Too many levels of symbolic links"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if names := testutil.Names(t, elsewhere); len(names) != 0 {
		t.Errorf("an open through the link made %q outside the mount", names)
	}
}

// A directory whose locks are all gone looks empty; rmdir removes it,
// cleaning the protocol's garbage (attempt files of dead acquirers), and
// refuses, saying why in the log, while an acquisition is under way.
func TestMountRmdirCleansGarbage(t *testing.T) {
	d := startDaemon(t)
	os.Mkdir(d.lockPath("old"), 0o755)
	garbage := d.lockPath("old/x.0123456789abcdef0123456789abcdef.lock-attempt")
	os.WriteFile(garbage, []byte("((host h)(pid 1)(message m))"), 0o644)
	long := time.Now().Add(-time.Hour)
	os.Chtimes(garbage, long, long)
	os.Mkdir(d.lockPath("busy"), 0o755)
	os.WriteFile(d.lockPath("busy/y.0123456789abcdef0123456789abcdef.lock-attempt"), nil, 0o644)
	out, _ := d.shell(t, `
ls -A "$MNT/old" "$MNT/busy"
rmdir "$MNT/old"; echo "rmdir old: $?"
rmdir "$MNT/busy"; echo "rmdir busy: $?"
`)
	for _, want := range []string{"rmdir old: 0\n", "rmdir busy: 1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(d.lockPath("old")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old: %v, want removed", err)
	}
	if !strings.Contains(d.stderr.String(), "an acquisition is under way") {
		t.Errorf("the daemon's log does not say why busy stays:\n%s", d.stderr)
	}
}

// chmod, chown and touch of a directory made through the mount work.
func TestMountDirectoryAttributes(t *testing.T) {
	d := startDaemon(t)
	out, err := d.shell(t, `
mkdir "$MNT/d" && chmod 0750 "$MNT/d" && chown 65534:65534 "$MNT/d" && touch -d @1000000000 "$MNT/d" &&
stat -c '%a %u %g %Y' "$MNT/d" "$BACKING/d"`)
	if err != nil || out != "750 65534 65534 1000000000\n750 65534 65534 1000000000\n" {
		t.Errorf("chmod, chown and touch of a directory: %q (%v)", out, err)
	}
}

// Copying or moving a file onto the mount fails loudly and leaves the
// source: small and large files, one line and many, with cp, mv, install
// and rsync. A write that cannot be kept whole as a message fails with
// EFBIG.
func TestMountCopyOntoMountFails(t *testing.T) {
	testenv.NeedTool(t, "rsync")
	d := startDaemon(t)
	src := t.TempDir()
	files := map[string]string{
		"one-line":   "hello\n",
		"many-lines": "a\nb\nc\n",
		"large-line": strings.Repeat("x", 5000),
		"large-many": strings.Repeat("a line of forty characters, newline.  \n", 200),
	}
	for name, content := range files {
		for _, tool := range []string{"cp", "mv", "install", "rsync"} {
			from := filepath.Join(src, tool+"-"+name)
			if err := os.WriteFile(from, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			cmd := exec.CommandContext(ctx, tool, from, d.path(tool+"-"+name))
			out, err := cmd.CombinedOutput()
			cancel()
			if err == nil {
				t.Errorf("%s of a %s file onto the mount succeeded: %s", tool, name, out)
			}
			if data, err := os.ReadFile(from); err != nil || string(data) != content {
				t.Errorf("%s of a %s file onto the mount: the source now: %v", tool, name, err)
			}
		}
	}
	if names := testutil.Names(t, d.backing); len(names) != 0 {
		t.Errorf("the copies left %q in the backing directory", names)
	}

	out, err := d.shell(t, `
exec 9>"$MNT/msg"
echo "first" >&9
head -c 5000 /dev/zero | tr '\0' x | dd bs=5000 iflag=fullblock status=none >&9 || echo "write failed: $?"
grep message: "$MNT/msg"
`)
	if err != nil || !strings.Contains(out, "File too large") || !strings.Contains(out, "message: first\n") {
		t.Errorf("a 5000-byte message write: %q (%v), want EFBIG and the message kept", out, err)
	}
}

// A process that holds a lock through the mount and opens it for writing
// again gets EDEADLK at once. A forked child, even one sharing the open
// file, is another process: it waits, as with flock(2).
func TestMountReopenOwnLock(t *testing.T) {
	d := startDaemon(t)
	out, err := d.shell(t, `
exec 9>"$MNT/self"
start=$(date +%s%N)
echo msg > "$MNT/self" || echo "second open failed after $(( ($(date +%s%N) - start) / 1000000 )) ms"
( exec 9>&-; exec 8>"$MNT/self"; echo "child got it" ) &
sleep 0.3
echo "parent releases"
exec 9>&-
wait
`)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "Resource deadlock avoided") || !strings.Contains(out, "second open failed") {
		t.Errorf("reopening its own lock: %q, want EDEADLK", out)
	}
	if !strings.Contains(out, "parent releases\nchild got it\n") {
		t.Errorf("the forked child's open: %q, want it to wait for the parent's release", out)
	}

	f, err := os.OpenFile(d.path("go"), os.O_WRONLY|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	second := make(chan error, 1)
	go func() {
		g, err := os.OpenFile(d.path("go"), os.O_WRONLY, 0)
		if err == nil {
			g.Close()
		}
		second <- err
	}()
	select {
	case err := <-second:
		if !errors.Is(err, syscall.EDEADLK) {
			t.Errorf("a second open in one program: %v, want EDEADLK", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("a second open in one program of a lock it holds still waits after 5s")
		f.Close() // it now gets the lock, and ends
		<-second
	}
}

// The noclobber idiom takes the lock and releases it when the shell closes
// the file, at the end of the command, as the README says; a descriptor
// kept open holds it, and with noclobber a second taker fails at once.
func TestMountNoclobberIdiom(t *testing.T) {
	d := startDaemon(t)
	out, _ := d.shell(t, `
( set -o noclobber; echo $$ > "$MNT/x" ) 2>&1 | sed 's/.*: //'
sleep 0.1
ls -A "$BACKING" | wc -l | sed 's/^/left after the idiom: /'
set -o noclobber
exec 9>"$MNT/x" && echo "held"
( exec 9>&-; exec 8>"$MNT/x" ) 2>&1 | sed 's/.*: //'
`)
	for _, want := range []string{"left after the idiom: 0\n", "held\n", "cannot overwrite existing file\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
