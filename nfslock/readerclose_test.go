//go:build linux

package nfslock

import (
	"os"
	"path/filepath"
	"testing"
)

// openHere reports whether this process has name open.
func openHere(t *testing.T, name string) bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && target == name {
			return true
		}
	}
	return false
}

// TestReaderFileClosedBeforeRemoval: a reader file is removed (or renamed
// over) with no descriptor of it open. On NFS, removing an open file is a
// silly rename to .nfsXXXX in P.nfs_readers, removed only at the close, and
// the last reader's rmdir of P.nfs_readers then fails with ENOTEMPTY: the
// next writer pays a mkdir, a listing and an rmdir. Before, withReaderFile
// kept it open throughout.
func TestReaderFileClosedBeforeRemoval(t *testing.T) {
	p := lockIn(t)
	s, err := TryLockShared(p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Unlock()
	acted := false
	if _, err := withReaderFile(s.name, func(os.FileInfo, []byte) (bool, error) {
		acted = true
		if openHere(t, s.name) {
			t.Errorf("the reader file is open when act runs: its removal on NFS would be a silly rename")
		}
		return false, nil
	}); err != nil || !acted {
		t.Fatalf("withReaderFile: acted %v, %v", acted, err)
	}
}
