//go:build linux

package nfslock

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/nfslockfs/nfslockfs/internal/testutil"
)

// These tests replace linkFile to play an NFS server whose LINK replies go
// missing: the client retransmits the LINK, and the server, which did the
// first one, answers the retransmission with EEXIST.

// replaceLinkFile makes the package link files to p's lock file with link
// until the test ends; other links are made as before.
func replaceLinkFile(t *testing.T, p string, link func(oldname, newname string) error) {
	t.Helper()
	saved := linkFile
	linkFile = func(oldname, newname string) error {
		if newname != lockFile(p) {
			return saved(oldname, newname)
		}
		return link(oldname, newname)
	}
	t.Cleanup(func() { linkFile = saved })
}

func linkError(oldname, newname string, errno syscall.Errno) error {
	return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: errno}
}

// heldFiles are the names in a lock's directory while it is held: P and
// P.nfs_lock, the exclusive mark, and no attempt file.
var heldFiles = []string{"lock", "lock.nfs_lock", "lock.nfs_readers"}

func TestLostLinkReply(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EEXIST, syscall.EIO} {
		t.Run(errno.Error(), func(t *testing.T) {
			p := lockIn(t)
			dir := filepath.Dir(p)
			links := 0
			replaceLinkFile(t, p, func(oldname, newname string) error {
				links++
				if err := os.Link(oldname, newname); err != nil {
					return err
				}
				return linkError(oldname, newname, errno)
			})

			l, err := TryLock(p, WithMessage("lost reply"))
			if err != nil {
				t.Fatalf("TryLock whose link happened but reported %v: %v", errno, err)
			}
			if links != 1 {
				t.Errorf("link called %d times, want 1", links)
			}
			if got := testutil.Names(t, dir); !slices.Equal(got, heldFiles) {
				t.Errorf("while held the directory holds %q, want %q", got, heldFiles)
			}
			if rec, err := ReadRecord(p); err != nil || rec.Pid != os.Getpid() || rec.Message != "lost reply" {
				t.Errorf("record = %+v, %v; want ours", rec, err)
			}
			if _, err := TryLock(p); !errors.Is(err, ErrLocked) {
				t.Errorf("TryLock while held: %v, want ErrLocked", err)
			}

			if err := l.Unlock(); err != nil {
				t.Fatalf("Unlock: %v", err)
			}
			if got := testutil.Names(t, dir); len(got) != 0 {
				t.Errorf("after Unlock the directory holds %q, want nothing", got)
			}
			l, err = TryLock(p)
			if err != nil {
				t.Fatalf("TryLock after the release: %v", err)
			}
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLinkFailsWithoutLinking: a link that reports an error and did not
// happen leaves the lock to its holder, and nothing of ours behind.
func TestLinkFailsWithoutLinking(t *testing.T) {
	t.Run("EEXIST while held", func(t *testing.T) {
		p := lockIn(t)
		other := Record{Host: "elsewhere.example", Pid: 4242, Message: "theirs"}
		plant(t, p, other)
		replaceLinkFile(t, p, func(oldname, newname string) error {
			return linkError(oldname, newname, syscall.EEXIST)
		})
		_, err := TryLock(p)
		var held *HeldError
		if !errors.Is(err, ErrLocked) || !errors.As(err, &held) || !sameRecord(held.Holder.Record, other) {
			t.Fatalf("TryLock: %v, want ErrLocked naming %+v", err, other)
		}
		if data, err := os.ReadFile(lockFile(p)); err != nil || string(data) != string(other.Encode()) {
			t.Errorf("the holder's record became %q, %v", data, err)
		}
		if got := testutil.Names(t, filepath.Dir(p)); !slices.Equal(got, []string{"lock.nfs_lock"}) {
			t.Errorf("the directory holds %q, want the holder's lock file only", got)
		}
	})
	t.Run("EIO while free", func(t *testing.T) {
		p := lockIn(t)
		replaceLinkFile(t, p, func(oldname, newname string) error {
			return linkError(oldname, newname, syscall.EIO)
		})
		_, err := TryLock(p)
		if !errors.Is(err, syscall.EIO) || errors.Is(err, ErrLocked) {
			t.Fatalf("TryLock: %v, want EIO", err)
		}
		if got := testutil.Names(t, filepath.Dir(p)); len(got) != 0 {
			t.Errorf("the directory holds %q, want nothing", got)
		}
	})
}

// TestLockVanishesAfterFailedLink: the holder releases the lock between our
// failed link and our read of its record. TryLock must try again, and win.
func TestLockVanishesAfterFailedLink(t *testing.T) {
	p := lockIn(t)
	plant(t, p, Record{Host: "elsewhere.example", Pid: 4242, Message: "releasing"})
	var linkErrs []error
	replaceLinkFile(t, p, func(oldname, newname string) error {
		err := os.Link(oldname, newname)
		if len(linkErrs) == 0 {
			if rerr := os.Remove(newname); rerr != nil {
				t.Error(rerr)
			}
		}
		linkErrs = append(linkErrs, err)
		return err
	})
	l, err := TryLock(p)
	if err != nil {
		t.Fatalf("TryLock: %v", err)
	}
	if len(linkErrs) != 2 || !errors.Is(linkErrs[0], syscall.EEXIST) || linkErrs[1] != nil {
		t.Errorf("links gave %v, want EEXIST and then success", linkErrs)
	}
	if got := testutil.Names(t, filepath.Dir(p)); !slices.Equal(got, heldFiles) {
		t.Errorf("while held the directory holds %q, want %q", got, heldFiles)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestLockKeepsChangingHands: every read after a failed link finds the lock
// gone, because it changes hands each time. TryLock gives up after a few
// tries and reports the lock held (retriable), not a filesystem error.
func TestLockKeepsChangingHands(t *testing.T) {
	p := lockIn(t)
	holder := Record{Host: "elsewhere.example", Pid: 4242, Message: "brief"}
	links := 0
	replaceLinkFile(t, p, func(oldname, newname string) error {
		links++
		plant(t, p, holder)
		err := os.Link(oldname, newname)
		if rerr := os.Remove(newname); rerr != nil {
			t.Error(rerr)
		}
		return err
	})
	_, err := TryLock(p)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock: %v, want ErrLocked", err)
	}
	if links < 2 {
		t.Errorf("link called %d times, want a retry", links)
	}
	if got := testutil.Names(t, filepath.Dir(p)); len(got) != 0 {
		t.Errorf("the directory holds %q, want nothing", got)
	}
}
