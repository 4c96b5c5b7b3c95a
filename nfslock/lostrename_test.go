//go:build linux

package nfslock

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// replaceRenameFile makes the package's renames to a name that lost says
// of happen but fail with ENOENT, as an NFS server answers a retransmitted
// RENAME whose first reply was lost, until the test ends.
func replaceRenameFile(t *testing.T, lost func(to string) bool) {
	t.Helper()
	saved := renameFile
	renameFile = func(from, to string) error {
		if err := saved(from, to); err != nil || !lost(to) {
			return err
		}
		return syscall.ENOENT
	}
	t.Cleanup(func() { renameFile = saved })
}

// TestLostRenameReply: a rename of the package that happened but whose
// reply was lost counts as done. Before, TryLock took its own mark for a
// shared holder's directory, and its release left the mark behind;
// TryLockShared failed and left its reader file, naming this live process,
// so that writers waited for it until the process exited; SetMessage and
// SharedLock.SetOwner failed, and the release that followed left the new
// record behind, held in the name of this live process.
func TestLostRenameReply(t *testing.T) {
	isReader := func(to string) bool { return strings.HasSuffix(to, ReaderSuffix) }
	for _, tc := range []struct {
		name string
		lost func(p string) func(to string) bool
		// take takes the lock and returns what releases it; change is
		// called with lost renames, and may be nil.
		take   func(t *testing.T, p string) (change func() error, unlock func() error)
		before bool // the lost renames begin before take
	}{
		{"TryLockShared", func(string) func(string) bool { return isReader }, func(t *testing.T, p string) (func() error, func() error) {
			s, err := TryLockShared(p)
			if err != nil {
				t.Fatalf("TryLockShared whose rename happened but reported ENOENT: %v", err)
			}
			return nil, s.Unlock
		}, true},
		{"SharedLock.SetOwner", func(string) func(string) bool { return isReader }, func(t *testing.T, p string) (func() error, func() error) {
			s, err := TryLockShared(p)
			if err != nil {
				t.Fatal(err)
			}
			return func() error { return s.SetOwner(os.Getpid()) }, s.Unlock
		}, false},
		{"TryLock's mark", func(p string) func(string) bool { return func(to string) bool { return to == readersDir(p) } }, func(t *testing.T, p string) (func() error, func() error) {
			l, err := TryLock(p)
			if err != nil {
				t.Fatalf("TryLock whose mark's rename happened but reported ENOENT: %v", err)
			}
			return nil, l.Unlock
		}, true},
		{"Lock.SetMessage", func(p string) func(string) bool { return func(to string) bool { return to == lockFile(p) } }, func(t *testing.T, p string) (func() error, func() error) {
			l, err := TryLock(p)
			if err != nil {
				t.Fatal(err)
			}
			return func() error { return l.SetMessage("new") }, l.Unlock
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := lockIn(t)
			if tc.before {
				replaceRenameFile(t, tc.lost(p))
			}
			change, unlock := tc.take(t, p)
			if !tc.before {
				replaceRenameFile(t, tc.lost(p))
			}
			if change != nil {
				if err := change(); err != nil {
					t.Errorf("record change whose rename happened but reported ENOENT: %v", err)
				}
			}
			if err := unlock(); err != nil {
				t.Errorf("Unlock: %v", err)
			}
			if got := testutil.Names(t, filepath.Dir(p)); len(got) != 0 {
				t.Errorf("after Unlock the directory holds %q, want nothing", got)
			}
			if rs, _ := Readers(p); len(rs) != 0 {
				t.Errorf("after Unlock %d reader files remain, naming pid %d (alive): writers wait for it", len(rs), rs[0].Record.Pid)
			}
		})
	}
}
