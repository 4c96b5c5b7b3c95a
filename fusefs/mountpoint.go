//go:build linux

package fusefs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nfslockfs/nfslockfs/internal/mountinfo"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// probeTimeout bounds the wait for the daemon of a mount found at the
// mountpoint to answer.
const probeTimeout = 2 * time.Second

// prepareMountpoint makes mountpoint ready for a mount of the directory
// backing (absolute, symbolic links resolved) and returns its absolute
// path, symbolic links resolved, or says why it cannot be used:
//
//   - a mount of a running nfslockfs is there already: refused, a second
//     daemon is never stacked on a first;
//   - the dead mount of an nfslockfs that was killed is there (its requests
//     fail with ENOTCONN): it is detached, so that a restart recovers;
//   - the mountpoint is, is inside, or contains the backing directory (by
//     path or, through bind mounts, by inode): refused, as the daemon
//     would serve its own requests and hang;
//   - it is not an empty directory: refused, naming what is there;
//   - finally it is guarded (see guard), so that while no daemon serves it
//     nothing can be created in it.
func prepareMountpoint(backing, mountpoint string, direct bool, log logrus.FieldLogger) (string, error) {
	mnt, err := resolve(mountpoint)
	if err != nil {
		return "", fmt.Errorf("mountpoint: %w", err)
	}
	if err := detachDeadMount(mnt, direct, log); err != nil {
		return "", err
	}
	if err := checkOverlap(backing, mnt); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(mnt)
	if err != nil {
		return "", fmt.Errorf("mountpoint: %w", err)
	}
	if len(entries) > 0 {
		names := make([]string, 0, 3)
		for _, e := range entries[:min(len(entries), cap(names))] {
			names = append(names, strconv.Quote(e.Name()))
		}
		return "", fmt.Errorf("mountpoint %s is not empty (%d entries: %s): the mount would hide them; files made there while no daemon served it lock nothing: remove them",
			mnt, len(entries), strings.Join(names, ", "))
	}
	guard(mnt, log)
	return mnt, nil
}

// resolve returns p made absolute with its symbolic links resolved,
// without touching p itself unless it is a symbolic link: p may be a dead
// mount, on which every access fails.
func resolve(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if fi, err := os.Lstat(abs); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return filepath.EvalSymlinks(abs)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(abs)), nil
}

// detachDeadMount looks at the topmost mount at mnt, if any. A running
// nfslockfs there is an error; a dead one is detached.
func detachDeadMount(mnt string, direct bool, log logrus.FieldLogger) error {
	fstype, source, err := topMount(mnt)
	if err != nil || fstype != mountinfo.NFSLockFSType {
		return err
	}
	switch err := probe(mnt); {
	case err == nil:
		return fmt.Errorf("mountpoint %s is already served by a running nfslockfs (of %s): stop it first", mnt, source)
	case errors.Is(err, syscall.ENOTCONN):
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("mountpoint %s is an nfslockfs mount (of %s) whose daemon did not answer within %v: stop it, or abort the mount's connection in /sys/fs/fuse/connections", mnt, source, probeTimeout)
	default:
		return fmt.Errorf("mountpoint %s: %w", mnt, err)
	}
	if err := detachMount(mnt, direct); err != nil {
		return fmt.Errorf("mountpoint %s is the dead mount of an nfslockfs that died; detaching it: %w", mnt, err)
	}
	log.WithFields(logrus.Fields{"mountpoint": mnt, "backing": source}).
		Warn("detached the dead mount of an nfslockfs that died; locks whose holders still run stay held until they exit")
	return nil
}

// topMount returns the type and source of the last mount at mnt in
// /proc/self/mountinfo (the one that path lookups reach), or "" if there
// is none.
func topMount(mnt string) (fstype, source string, err error) {
	mounts, err := mountinfo.Read()
	for _, m := range mounts {
		if m.Mountpoint == mnt {
			fstype, source = m.FSType, m.Source
		}
	}
	return fstype, source, err
}

// probe asks the filesystem at mnt for its statistics. The mount of a
// daemon that died answers ENOTCONN at once, that of a live one answers;
// one whose daemon does not answer within probeTimeout gives an error
// matching os.ErrDeadlineExceeded.
//
// Limits: the goroutine asking stays blocked until that daemon answers,
// dies, or its connection is aborted.
func probe(mnt string) error {
	answer := make(chan error, 1)
	go func() {
		var st unix.Statfs_t
		answer <- unix.Statfs(mnt, &st)
	}()
	select {
	case err := <-answer:
		return err
	case <-time.After(probeTimeout):
		return os.ErrDeadlineExceeded
	}
}

// checkOverlap refuses a mountpoint that is, is inside, or contains the
// backing directory: requests on the mount would reach the mount again
// through the backing directory, and the daemon would wait for itself. Both
// are compared by path and by inode, so that bind mounts and symbolic links
// do not hide an overlap.
func checkOverlap(backing, mnt string) error {
	var mntSt, backSt unix.Stat_t
	if err := unix.Stat(mnt, &mntSt); err != nil {
		return fmt.Errorf("mountpoint: %w", err)
	}
	if err := unix.Stat(backing, &backSt); err != nil {
		return fmt.Errorf("backing directory: %w", err)
	}
	if mnt == backing || sameFile(mntSt, backSt) {
		return fmt.Errorf("mountpoint %s is the backing directory %s: the daemon would serve its own requests and hang", mnt, backing)
	}
	if isAncestor(backing, backSt, mnt) {
		return fmt.Errorf("mountpoint %s is inside the backing directory %s: the daemon would serve its own requests and hang", mnt, backing)
	}
	if isAncestor(mnt, mntSt, backing) {
		return fmt.Errorf("mountpoint %s contains the backing directory %s: the daemon would serve its own requests and hang", mnt, backing)
	}
	return nil
}

// isAncestor reports whether dir (whose stat is st) is a parent of p, by
// path or by inode (p's parents are looked at up to the root).
func isAncestor(dir string, st unix.Stat_t, p string) bool {
	for q := filepath.Dir(p); ; q = filepath.Dir(q) {
		if q == dir {
			return true
		}
		var qst unix.Stat_t
		if unix.Stat(q, &qst) == nil && sameFile(qst, st) {
			return true
		}
		if q == "/" || q == "." {
			return false
		}
	}
}

func sameFile(a, b unix.Stat_t) bool { return a.Dev == b.Dev && a.Ino == b.Ino }

// guard marks the directory mnt, which the mount is about to cover,
// immutable (chattr +i): while no daemon serves it (before the first start
// after boot, after a stop, after a crash once the dead mount is gone) no
// one, root included, can create a file in it, so an open for writing
// there fails (EPERM) instead of making a plain local file that locks
// nothing, and no leftover files keep the next start from mounting. The
// mark stays when the daemon stops; that is its purpose. It needs
// CAP_LINUX_IMMUTABLE (root) and a filesystem with the attribute (ext4,
// xfs, btrfs, tmpfs and others); without them the mountpoint is left
// unguarded and a warning says so.
func guard(mnt string, log logrus.FieldLogger) {
	log = log.WithField("mountpoint", mnt)
	err := setImmutable(mnt)
	if err != nil {
		log.WithError(err).Warn("mountpoint is not guarded: while no daemon serves it, programs can create plain files in it that lock nothing; run as root, on a filesystem with the immutable attribute (ext4, xfs, btrfs, tmpfs)")
		return
	}
	log.Info("mountpoint guarded: it is immutable (chattr +i), so nothing can be created in it while no daemon serves it")
}

// fsImmutable is FS_IMMUTABLE_FL of <linux/fs.h>, which x/sys/unix lacks.
const fsImmutable = 0x10

// setImmutable sets the immutable attribute of the directory dir.
func setImmutable(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return fmt.Errorf("reading the attributes of %s: %w", dir, err)
	}
	if flags&fsImmutable != 0 {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|fsImmutable)); err != nil {
		return fmt.Errorf("making %s immutable: %w", dir, err)
	}
	return nil
}
