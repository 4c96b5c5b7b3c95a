//go:build linux

package fusefs

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Shutdown stops the filesystem as a daemon told to stop must: no more
// lock-taking opens, blocked opens fail with EINTR, and the mount
// goes away. A mount that is still in use (open lock files) is detached:
// its holders keep their locks and release them by closing, and the mount
// disappears with the last of them. Shutdown returns when it has, or when
// ctx ends; a lock whose holder process is alive is never released by it.
func (s *Server) Shutdown(ctx context.Context) error {
	select {
	case <-s.done:
		return nil
	default:
	}
	s.fsys.stopOpens()
	s.awaitWaiters(ctx)
	// Not go-fuse's Server.Unmount: it waits for the connection to end
	// without a deadline, and a copy of the mount in another mount
	// namespace keeps the connection alive after the unmount.
	if err := unmountFUSE(s.mountpoint, s.direct, 0); err != nil {
		s.fsys.log.WithError(err).WithField("mountpoint", s.mountpoint).Info("mount is busy: detaching it; it goes away when its last open file is closed")
		if err := s.detach(); err != nil {
			return fmt.Errorf("unmounting %s: %w", s.mountpoint, err)
		}
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s is detached but still in use: locks of running holders stay held until they close them: %w", s.mountpoint, ctx.Err())
	}
}

// awaitWaiters gives the opens that were blocked a moment to fail and let
// go of the mount, so that unmounting it need not detach it.
func (s *Server) awaitWaiters(ctx context.Context) {
	deadline := time.Now().Add(time.Second)
	for s.fsys.waiting.Load() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// detach unmounts lazily (MNT_DETACH): the mount leaves the namespace now,
// and the kernel lets it go when it is no longer in use.
func (s *Server) detach() error { return detachMount(s.mountpoint, s.direct) }

// detachMount lazily unmounts the FUSE mount at mnt.
func detachMount(mnt string, direct bool) error {
	return unmountFUSE(mnt, direct, syscall.MNT_DETACH)
}

// unmountFUSE unmounts the FUSE mount at mnt, lazily if flags has
// MNT_DETACH: by umount2(2) if it was mounted directly (as root), else by
// fusermount. It does not wait for the connection to end.
func unmountFUSE(mnt string, direct bool, flags int) error {
	if direct {
		return syscall.Unmount(mnt, flags)
	}
	args := []string{"-u", mnt}
	if flags&syscall.MNT_DETACH != 0 {
		args = []string{"-u", "-z", mnt}
	}
	var err error
	for _, bin := range []string{"fusermount3", "fusermount"} {
		var out []byte
		if out, err = exec.Command(bin, args...).CombinedOutput(); err == nil {
			return nil
		} else if len(out) > 0 {
			err = fmt.Errorf("%s: %s", bin, strings.TrimSpace(string(out)))
		}
	}
	return err
}

// stopOpens makes blocked lock-taking opens fail with EINTR, and new ones
// with ESHUTDOWN.
func (fsys *filesystem) stopOpens() {
	if n := fsys.waiting.Load(); n > 0 {
		fsys.log.WithField("blocked", n).Info("stopping: failing blocked opens")
	}
	fsys.cancelOpening(errStopping)
}
