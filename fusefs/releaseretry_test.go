//go:build linux

package fusefs

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
	"github.com/sirupsen/logrus"
)

// releaseFaults hears of the mount's failed releases.
type releaseFaults struct {
	noEvents
	failed chan struct{}
}

func (e releaseFaults) BackingError(op Operation, _ syscall.Errno) {
	if op == OpRelease {
		select {
		case e.failed <- struct{}{}:
		default:
		}
	}
}

// breakReadersDir makes the reader files of the lock at p unreachable
// (P.nfs_readers a file: ENOTDIR, a filesystem error) and returns what
// undoes it.
func breakReadersDir(t *testing.T, p string) (restore func()) {
	t.Helper()
	dir := p + nfslock.ReadersDirSuffix
	if err := os.Rename(dir, p+".keep"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		os.Remove(dir)
		if err := os.Rename(p+".keep", dir); err != nil {
			t.Error(err)
		}
	}
}

// TestReleasesRetried: the releases of a shared lock the mount holds (a
// flock(2) or fcntl(2) lock) and of a lock acquired just as its open was
// interrupted are retried after a filesystem error, as a RELEASE is, rather
// than tried once: before, the first error left the reader file naming a
// live process, the lock held until that process exited.
func TestReleasesRetried(t *testing.T) {
	for _, tc := range []struct {
		name string
		// release releases s as the mount does, returning a channel closed
		// once the release has ended.
		release func(fsys *filesystem, s *nfslock.SharedLock, fault func()) <-chan struct{}
	}{
		{"shared hold", func(fsys *filesystem, s *nfslock.SharedLock, fault func()) <-chan struct{} {
			fault()
			return fsys.releaseOwnerLock(&ownerLock{shared: s, released: make(chan struct{})})
		}},
		{"acquired as interrupted", func(fsys *filesystem, s *nfslock.SharedLock, fault func()) <-chan struct{} {
			fsys.cancelOpening(errStopping) // the wait ends as the lock comes
			log := fsys.log.WithField("path", s.Path())
			waitToAcquire(fsys, context.Background(), caller{}, log, func(context.Context) (*nfslock.SharedLock, error) {
				fault()
				return s, nil
			})
			done := make(chan struct{})
			go func() { fsys.releasing.Wait(); close(done) }()
			return done
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "lock")
			s, err := nfslock.TryLockShared(p)
			if err != nil {
				t.Fatal(err)
			}
			log := logrus.New()
			log.SetOutput(io.Discard)
			events := releaseFaults{failed: make(chan struct{}, 1)}
			fsys := newFilesystem(FormatText, log, events)
			var restore func()
			released := tc.release(fsys, s, func() { restore = breakReadersDir(t, p) })
			select { // the first try fails; then the fault is over
			case <-events.failed:
			case <-released:
			case <-time.After(10 * time.Second):
				t.Fatal("the release neither failed nor ended")
			}
			restore()
			select {
			case <-released:
			case <-time.After(10 * time.Second):
				t.Fatal("the release did not end after the fault")
			}
			if rs, err := nfslock.Readers(p); err != nil || len(rs) != 0 {
				t.Errorf("after the release, the fault over: %d shared holders (%v), want none: held until pid %d exits", len(rs), err, os.Getpid())
				s.Unlock()
			}
		})
	}
}

// TestReleaseGivenUpEndsVouch: a release that keeps failing as the daemon
// stops is given up, and the daemon's vouch for the lock ends with it: the
// record decides, and the lock is stale once the process it names has
// exited, though the daemon's process lives on. Before, the vouch stayed,
// and the lock was held for as long as that process ran.
func TestReleaseGivenUpEndsVouch(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	owner := exec.Command("sleep", "60")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	s, err := nfslock.TryLockShared(p, nfslock.WithOwner(owner.Process.Pid), nfslock.WithVouch())
	owner.Process.Kill()
	owner.Wait()
	if err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	fsys := newFilesystem(FormatText, log, noEvents{})
	fsys.cancelOpening(errStopping)
	restore := breakReadersDir(t, p)
	select {
	case <-fsys.releaseOwnerLock(&ownerLock{shared: s, released: make(chan struct{})}):
	case <-time.After(10 * time.Second):
		t.Fatal("a stopping daemon's failing release was not given up")
	}
	restore()
	if rs, err := nfslock.Readers(p); err != nil || len(rs) != 0 {
		t.Errorf("after the release was given up: %d shared holders (%v), want none: the holder exited, the daemon's vouch must end", len(rs), err)
		s.Unlock()
	}
}
