//go:build linux

package nfslock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A free lock's leftover P goes if it is a record or empty; user data at P
// never does.
func TestRemoveLeftover(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	os.WriteFile(p("record"), []byte("((host h)(pid 1)(message m))"), 0o644)
	os.WriteFile(p("empty"), nil, 0o644)
	os.WriteFile(p("data.csv"), []byte("a,b\n"), 0o644)
	os.Mkdir(p("dir"), 0o755)
	os.Symlink("record", p("link"))
	for _, name := range []string{"record", "empty"} {
		if err := RemoveLeftover(p(name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range []string{"data.csv", "dir", "link"} {
		if err := RemoveLeftover(p(name)); !errors.Is(err, ErrNotRecord) {
			t.Errorf("%s: %v, want ErrNotRecord", name, err)
		}
		if _, err := os.Lstat(p(name)); err != nil {
			t.Errorf("%s was removed: %v", name, err)
		}
	}
	if err := RemoveLeftover(p("missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: %v, want ErrNotExist", err)
	}
}

func TestIsGarbage(t *testing.T) {
	now := time.Now()
	attempt := "x.0123456789abcdef0123456789abcdef" + AttemptSuffix
	for _, tc := range []struct {
		name string
		age  time.Duration
		want bool
	}{
		{attempt, time.Hour, true},
		{attempt, time.Minute, false},
		{"x" + LockSuffix, time.Hour, false},
		{".nfs0123456789abcdef", time.Hour, false},
		{"plain" + AttemptSuffix, time.Hour, false},
	} {
		if got := IsGarbage(tc.name, now.Add(-tc.age), now); got != tc.want {
			t.Errorf("IsGarbage(%q, %v old) = %v, want %v", tc.name, tc.age, got, tc.want)
		}
	}
}
