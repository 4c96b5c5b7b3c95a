//go:build linux

package nfslock

import (
	"os"
	"os/exec"
	"sync"
	"testing"
)

// A lock whose record names a process that has exited (the CLI's COMMAND,
// a FUSE opener) is stale to every other process of the host while its
// holder is still releasing it. The release and the cleaners must never
// interleave so that a cleaner removes a lock taken after the release.
func TestReleaseRacesStaleCleaners(t *testing.T) {
	p := lockIn(t)
	const rounds = 200
	for round := range rounds {
		child := exec.Command("true")
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		l, err := TryLock(p, WithOwner(child.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		child.Wait() // the record now names a dead process

		var wg sync.WaitGroup
		takers := make([]*Lock, 2)
		wg.Go(func() { l.Unlock() })
		for i := range takers {
			wg.Go(func() {
				for range 50 {
					if m, err := TryLock(p); err == nil {
						takers[i] = m
						return
					}
				}
			})
		}
		wg.Wait()
		if takers[0] != nil && takers[1] != nil {
			t.Fatalf("round %d: two TryLocks both took the lock", round)
		}
		for _, m := range takers {
			if m != nil {
				if err := m.Unlock(); err != nil {
					t.Fatalf("round %d: a lock taken after the release was removed under its holder: %v", round, err)
				}
			}
		}
		os.Remove(lockFile(p)) // whatever a round left, the next starts free
	}
}
