//go:build linux

package fusefs

import (
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/testutil"
	"github.com/nfslockfs/nfslockfs/nfslock"
)

func TestReadShowsCurrentHolderEveryTime(t *testing.T) {
	m := mount(t, FormatText)
	if data, err := os.ReadFile(m.path("r")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cat of a lock that does not exist: %q, %v", data, err)
	}
	f, err := os.OpenFile(m.path("r"), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	reader, err := os.Open(m.path("r")) // cat, kept open
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	readAt0 := func(f *os.File) string {
		buf := make([]byte, 8192)
		n, err := f.ReadAt(buf, 0)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	for _, msg := range []string{"first", "second"} {
		if _, err := f.Write([]byte(msg + "\n")); err != nil {
			t.Fatal(err)
		}
		want := "message: " + msg + "\n"
		if got := readAt0(reader); !strings.Contains(got, want) {
			t.Errorf("a reader sees %q, want %q in it", got, want)
		}
		if got := readAt0(f); !strings.Contains(got, want) {
			t.Errorf("the holder reads %q, want %q in it", got, want)
		}
	}
	rec, err := nfslock.ReadRecord(m.lockPath("r"))
	if err != nil || rec.Message != "second" {
		t.Errorf("record on disk: %+v, %v", rec, err)
	}
	if _, err := f.Write([]byte(strings.Repeat("x", 5000))); !errors.Is(err, syscall.EFBIG) {
		t.Errorf("a 5000-byte write: %v, want EFBIG", err)
	}
	if rec, _ := nfslock.ReadRecord(m.lockPath("r")); rec.Message != "second" {
		t.Errorf("after a 5000-byte write the message is %d bytes, want the last one kept", len(rec.Message))
	}
	f.Close()
	waitFor(t, "the lock is released", func() bool { return !m.isHeld("r") })
	if got := readAt0(reader); got != "" {
		t.Errorf("a reader of a free lock sees %q, want nothing", got)
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		format Format
		want   []string
	}{
		{FormatText, []string{"host: ", "pid: ", "started: ", "held-since: ", "message: "}},
		{FormatSexp, []string{"((host ", "(pid ", "(message", "(start_time"}},
		{FormatJSON, []string{`{"state":"alive"`, `"host":`, `"pid":`, `"held_since":`}},
	} {
		t.Run(tc.format.String(), func(t *testing.T) {
			m := mount(t, tc.format)
			m.mustHold(t, "f")
			data, err := os.ReadFile(m.path("f"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.want {
				if !strings.Contains(string(data), want) {
					t.Errorf("%s record %q lacks %q", tc.format, data, want)
				}
			}
		})
	}
}

func TestStat(t *testing.T) {
	m := mount(t, FormatText)
	before := time.Now().Add(-time.Second)
	holder := m.mustHold(t, "s")
	fi, err := os.Stat(m.path("s"))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(m.path("s"))
	if !fi.Mode().IsRegular() || fi.Size() != int64(len(data)) {
		t.Errorf("held lock: mode %v size %d, want a regular file of %d bytes", fi.Mode(), fi.Size(), len(data))
	}
	if fi.ModTime().Before(before) || fi.ModTime().After(time.Now()) {
		t.Errorf("held lock: mtime %v, want when it was acquired", fi.ModTime())
	}
	backing, _ := os.Stat(m.lockPath("s") + nfslock.LockSuffix)
	if fi.Mode().Perm() != backing.Mode().Perm() {
		t.Errorf("mode %v, want the lock file's %v", fi.Mode().Perm(), backing.Mode().Perm())
	}
	// A new message changes the size, not the time it was acquired.
	holder.Write([]byte("a new message"))
	after, err := os.Stat(m.path("s"))
	if err != nil || !after.ModTime().Equal(fi.ModTime()) || after.Size() == fi.Size() {
		t.Errorf("after a write: mtime %v size %d (%v), want mtime %v and a new size", after.ModTime(), after.Size(), err, fi.ModTime())
	}

	os.WriteFile(m.lockPath("leftover"), []byte("junk"), 0o600)
	fi, err = os.Stat(m.path("leftover"))
	if err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("free lock with a leftover file: %v, %v; want size 0, mode 0600", fi, err)
	}
	if _, err := os.Stat(m.path("absent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat of a free lock without files: %v, want ENOENT", err)
	}
}

func TestListing(t *testing.T) {
	m := mount(t, FormatText)
	for _, name := range []string{
		"plain",                 // a lock's file P (Core v2 leftover)
		"held.nfs_lock",         // a lock held, P not written
		"both", "both.nfs_lock", // a lock held, as we and Core v1 write it
		"x.0123456789abcdef0123456789abcdef.lock-attempt", // hidden
		".nfs000000000abc0001",                            // hidden
	} {
		os.WriteFile(m.lockPath(name), nil, 0o644)
	}
	os.Mkdir(m.lockPath("dir"), 0o755)
	os.WriteFile(m.lockPath("dir/inner"), nil, 0o644)

	if got, want := testutil.Names(t, m.dir), []string{"both", "dir", "held", "plain"}; !slices.Equal(got, want) {
		t.Errorf("ls: %v, want %v", got, want)
	}
	if got, want := testutil.Names(t, m.path("dir")), []string{"inner"}; !slices.Equal(got, want) {
		t.Errorf("ls dir: %v, want %v", got, want)
	}
	for _, hidden := range []string{"held.nfs_lock", ".nfs000000000abc0001"} {
		if _, err := os.Stat(m.path(hidden)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat %s: %v, want ENOENT", hidden, err)
		}
	}

	if err := os.Mkdir(m.path("new"), 0o750); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(m.lockPath("new")); err != nil || !fi.IsDir() {
		t.Errorf("mkdir did not reach the backing directory: %v", err)
	}
	f, err := m.openWrite("new/lock", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !m.isHeld("new/lock") {
		t.Error("a lock in a new directory was not taken")
	}
	f.Close()
	waitFor(t, "the lock is released", func() bool { return !m.isHeld("new/lock") })
	if err := os.Remove(m.path("new")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.lockPath("new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rmdir did not reach the backing directory: %v", err)
	}
	if err := os.Mkdir(m.path("bad.nfs_lock"), 0o755); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("mkdir of a helper file's name: %v, want EINVAL", err)
	}
}

func TestRemove(t *testing.T) {
	m := mount(t, FormatText)
	f := m.mustHold(t, "held")
	if err := os.Remove(m.path("held")); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("rm of a held lock: %v, want EBUSY", err)
	}
	if !m.isHeld("held") {
		t.Error("rm of a held lock released it")
	}
	f.Close()

	os.WriteFile(m.lockPath("leftover"), nil, 0o644)
	if err := os.Remove(m.path("leftover")); err != nil {
		t.Errorf("rm of a free lock's leftover file: %v", err)
	}
	if _, err := os.Lstat(m.lockPath("leftover")); !errors.Is(err, os.ErrNotExist) {
		t.Error("rm left the backing file")
	}

	host, _ := os.Hostname()
	stale := []byte("((host " + host + ")(pid " + itoa(deadPid(t)) + ")(message gone))")
	os.WriteFile(m.lockPath("stale"), stale, 0o644)
	os.WriteFile(m.lockPath("stale")+nfslock.LockSuffix, stale, 0o644)
	if err := os.Remove(m.path("stale")); err != nil {
		t.Errorf("rm of a stale lock: %v", err)
	}
	if m.isHeld("stale") {
		t.Error("rm of a stale lock left it")
	}
}

func TestNames(t *testing.T) {
	m := mount(t, FormatText)
	for _, name := range []string{
		"with space", "new\nline", "bytes\xff\xfe", strings.Repeat("n", nfslock.MaxNameLen),
	} {
		f, err := m.openWrite(name, 0)
		if err != nil {
			t.Errorf("open %q: %v", name, err)
			continue
		}
		if !m.isHeld(name) {
			t.Errorf("open %q did not take its lock", name)
		}
		if got := testutil.Names(t, m.dir); !slices.Contains(got, name) {
			t.Errorf("ls does not show %q: %q", name, got)
		}
		f.Close()
	}
	long := strings.Repeat("n", nfslock.MaxNameLen+1)
	if err := m.tryOpen(long, 0); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("open of a %d-byte name: %v, want ENAMETOOLONG", len(long), err)
	}
}

// A lock file that is not a record gives a clear error, and nothing is
// touched: a symbolic link in place of P.nfs_lock, an unparsable record.
func TestBadLockFiles(t *testing.T) {
	m := mount(t, FormatText)
	os.Symlink("/etc/passwd", m.lockPath("link")+nfslock.LockSuffix)
	if _, err := os.Stat(m.path("link")); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("stat of a lock whose lock file is a symbolic link: %v, want ELOOP", err)
	}
	if err := m.tryOpen("link", syscall.O_NONBLOCK); !errors.Is(err, syscall.ELOOP) {
		t.Errorf("open of a lock whose lock file is a symbolic link: %v, want ELOOP", err)
	}
	if target, err := os.Readlink(m.lockPath("link") + nfslock.LockSuffix); err != nil || target != "/etc/passwd" {
		t.Errorf("the symbolic link became %q, %v", target, err)
	}

	os.WriteFile(m.lockPath("corrupt")+nfslock.LockSuffix, []byte("((host"), 0o644)
	if data, _ := os.ReadFile(m.path("corrupt")); !strings.Contains(string(data), "\nraw: ((host\n") {
		t.Errorf("cat of a corrupt record: %q", data)
	}
	if err := m.tryOpen("corrupt", syscall.O_NONBLOCK); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("open of a lock with a corrupt record: %v, want EAGAIN (held by an unknown holder)", err)
	}
}
