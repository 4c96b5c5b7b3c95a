//go:build linux

package nfslock

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// A helper file's name, or a path that names no file of its own, is not a
// lock: taking it would alias another lock's files (P.nfs_lock as a lock
// name renames its record over lock P's, and removes it on release).
func TestInvalidLockPathsAreRefused(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	held, err := TryLock("x")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	invalid := []string{
		"", "/", ".", "..", "./", "../", "sub/..",
		"x" + LockSuffix, dir + "/x" + LockSuffix,
		"x.0123456789abcdef0123456789abcdef" + AttemptSuffix,
		".nfs000000000123abcd",
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	for _, p := range invalid {
		calls := map[string]error{}
		_, calls["TryLock"] = TryLock(p)
		_, calls["Acquire"] = Acquire(ctx, p)
		_, calls["Inspect"] = Inspect(p)
		_, calls["ReadRecord"] = ReadRecord(p)
		_, calls["Break"] = Break(p)
		calls["Unlock"] = Unlock(p)
		for call, err := range calls {
			if !errors.Is(err, ErrInvalidPath) || !errors.Is(err, syscall.EINVAL) {
				t.Errorf("%s(%q): %v; want an error matching ErrInvalidPath and EINVAL", call, p, err)
			}
		}
	}
	if rec, err := ReadRecord("x"); err != nil || rec != held.Record() {
		t.Errorf("lock x after the attempts: %+v, %v; want still held by %+v", rec, err, held.Record())
	}
	if names := testutil.Names(t, dir); !slices.Equal(names, []string{"x", "x" + LockSuffix, "x" + ReadersDirSuffix}) {
		t.Errorf("files: %q; want only x, x%s and the exclusive mark x%s", names, LockSuffix, ReadersDirSuffix)
	}
}

// d, d/, ./d, d/. and /abs/d are one lock, on disk as in the process.
func TestSpellingsOfOnePathAreOneLock(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("d", 0o777); err != nil {
		t.Fatal(err)
	}
	l, err := TryLock("d/")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "d"); l.Path() != want {
		t.Errorf("Path() = %q, want %q", l.Path(), want)
	}
	for _, p := range []string{"d", "./d", "d/.", "d//", filepath.Join(dir, "d"), "../" + filepath.Base(dir) + "/d"} {
		if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
			t.Errorf("TryLock(%q) while d/ is held: %v; want ErrLocked", p, err)
		}
		if h, err := Inspect(p); err != nil || h.State != HolderAlive {
			t.Errorf("Inspect(%q) while d/ is held: %+v, %v; want alive", p, h, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "d"+LockSuffix)); err != nil {
		t.Errorf("d/ is not locked as d: %v", err)
	}
	if names := testutil.Names(t, filepath.Join(dir, "d")); len(names) != 0 {
		t.Errorf("files inside d: %q; want none", names)
	}
	if err := Unlock("./d"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "d"+LockSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Unlock(./d): %v; want the lock gone", err)
	}
}

// A Lock works on the file it took, whatever the working directory becomes.
func TestLockSurvivesChdir(t *testing.T) {
	for _, release := range []struct {
		name string
		f    func(*Lock) error
	}{
		{"Unlock", (*Lock).Unlock},
		{"UnlockAll", func(*Lock) error { return UnlockAll() }},
		{"SetMessage", func(l *Lock) error {
			if err := l.SetMessage("moved"); err != nil {
				return err
			}
			return l.Unlock()
		}},
	} {
		t.Run(release.name, func(t *testing.T) {
			first, elsewhere := t.TempDir(), t.TempDir()
			t.Chdir(first)
			l, err := TryLock("rel")
			if err != nil {
				t.Fatal(err)
			}
			t.Chdir(elsewhere)
			if err := release.f(l); err != nil {
				t.Fatalf("release after chdir: %v", err)
			}
			if names := testutil.Names(t, first); len(names) != 0 {
				t.Errorf("left in the lock's directory: %q", names)
			}
			if _, err := Inspect(filepath.Join(first, "rel")); !errors.Is(err, ErrNotLocked) {
				t.Errorf("lock after release: %v; want free", err)
			}
		})
	}
}
