//go:build linux

package nfslock

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// An attempt file being created over NFS with O_EXCL carries the create
// verifier as its mtime until the client's next SETATTR: a date decades
// ago. The sweep must judge its age by the server's ctime, or it removes a
// live acquirer's attempt, whose link then fails with ENOENT (seen on
// NFSv4.2 in the real-NFS rig's chaos run).
func TestRemoveOldAttemptsJudgesByChangeTime(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	var attempts []string
	for range attemptsKept + 2 {
		name := attemptFile(p)
		if err := os.WriteFile(name, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		attempts = append(attempts, name)
	}
	// The one being created: mtime 1970, changed just now.
	if err := os.Chtimes(attempts[0], time.Unix(1, 0), time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	removeOldAttempts(p, time.Now())
	for _, name := range attempts {
		if _, err := os.Lstat(name); err != nil {
			t.Errorf("a fresh attempt file was swept: %v", err)
		}
	}
	// Ten minutes on, all are leftovers: the newest attemptsKept stay.
	lastAttemptSweep.Delete(p)
	removeOldAttempts(p, time.Now().Add(10*time.Minute))
	left := 0
	for _, name := range attempts {
		if _, err := os.Lstat(name); err == nil {
			left++
		}
	}
	if left != attemptsKept {
		t.Errorf("%d attempt files left after a sweep of old ones, want %d", left, attemptsKept)
	}
}
