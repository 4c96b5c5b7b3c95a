//go:build linux

package nfslock

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestGateReleaseFailureAbandons: when the gate of a shared acquisition
// cannot be let go (a filesystem fault; here P.nfs_lock reads as a
// directory for a while), the acquisition fails and the gate is abandoned:
// no longer vouched for nor held by this process, so that once the fault
// is over the record decides again, and the process it names has exited.
// Before, the gate stayed held for the life of this process (the daemon).
// Whether or not the reader got in.
func TestGateReleaseFailureAbandons(t *testing.T) {
	for _, registered := range []bool{true, false} {
		t.Run(fmt.Sprintf("registered=%v", registered), func(t *testing.T) {
			p := lockIn(t)
			keep := p + ".keep"
			saved := renameFile
			renameFile = func(from, to string) error {
				if !strings.HasSuffix(to, ReaderSuffix) {
					return saved(from, to)
				}
				var err error = syscall.EIO
				if registered {
					err = saved(from, to)
				}
				// The fault: P.nfs_lock reads as no lock at all.
				os.Link(lockFile(p), keep)
				os.Remove(lockFile(p))
				os.Mkdir(lockFile(p), 0o777)
				return err
			}
			var opener int
			var err error
			exitedOwner(t, func(pid int) {
				opener = pid
				_, err = TryLockShared(p, WithOwner(pid), WithVouch())
			})
			renameFile = saved
			if err == nil {
				t.Fatal("TryLockShared whose gate cannot be released succeeded")
			}
			if err := os.Remove(lockFile(p)); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(keep, lockFile(p)); err != nil { // the fault is over
				t.Fatal(err)
			}
			if rs, _ := Readers(p); len(rs) != 0 {
				t.Errorf("a failed TryLockShared left %d reader files", len(rs))
			}
			if got := otherProcessTries(t, p); got != "locked" {
				t.Errorf("the gate of a failed shared acquisition, its opener %d gone, the fault over: another process's TryLock says %q, want it cleaned up and taken", opener, got)
			}
			l, err := TryLock(p)
			if err != nil {
				t.Fatalf("this process's TryLock afterwards: %v", err)
			}
			l.Unlock()
		})
	}
}
