//go:build linux

package nfslock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestReaderLeavesForeignReadersName: a reader removes a P.nfs_readers
// that is not a directory only if it is a dead writer's mark (a record
// file); a file of data there is left alone, and a symbolic link is not
// taken for the directory: all fail loudly (ErrInvalidPath). Before, the
// file of data was unlinked and the shared lock taken, a dangling link gave
// ENOENT, as if the directory were missing, and a link to a directory
// registered the reader there: a writer's mark replaces the link, so the
// writer got in beside the reader.
func TestReaderLeavesForeignReadersName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, dir string)
		check func(t *testing.T, dir string)
	}{
		{"file of data", func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, []byte("precious\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, dir string) {
			if b, err := os.ReadFile(dir); err != nil || string(b) != "precious\n" {
				t.Errorf("the file of data now holds %q, %v", b, err)
			}
		}},
		{"dangling symbolic link", func(t *testing.T, dir string) {
			if err := os.Symlink(filepath.Join(filepath.Dir(dir), "elsewhere"), dir); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, dir string) {
			if fi, err := os.Lstat(dir); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the symbolic link is now %v, %v", fi, err)
			}
		}},
		{"symbolic link to a directory", func(t *testing.T, dir string) {
			elsewhere := filepath.Join(filepath.Dir(dir), "elsewhere")
			if err := os.Mkdir(elsewhere, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(elsewhere, dir); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, dir string) {
			if fi, err := os.Lstat(dir); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the symbolic link is now %v, %v", fi, err)
			}
			if names, err := os.ReadDir(filepath.Join(filepath.Dir(dir), "elsewhere")); err != nil || len(names) != 0 {
				t.Errorf("the linked directory holds %v (%v): a reader registered there, where a writer's mark replacing the link would not see it", names, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := lockIn(t)
			tc.plant(t, readersDir(p))
			s, err := TryLockShared(p)
			if err == nil {
				s.Unlock()
			}
			if !errors.Is(err, ErrInvalidPath) {
				t.Errorf("TryLockShared: %v, want an error matching ErrInvalidPath", err)
			}
			tc.check(t, readersDir(p))
			if _, err := os.Lstat(lockFile(p)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the gate stays after the failure: %v", err)
			}
		})
	}
}
