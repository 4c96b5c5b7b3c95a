//go:build linux

package fusefs

import (
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// A flock or OFD lock belongs to an open file description, which outlives
// the process that asked for it when others share it: `exec 9<lock; flock
// 9` takes it in flock(1), which exits at once while the shell keeps
// descriptor 9, and a forked child keeps its parent's. The record must name
// a live process that has the description open, or another process of this
// host (the CLI, Core, another daemon) would judge the lock stale while it
// is held. So the record names the farthest ancestor of the requester that
// shares the description (sharedAncestor), and when the process it names
// exits while the description is still open, keepNamed names another live
// process that has the lock file open through the mount.
//
// Limits: a process is found by its descriptors in /proc of the daemon's
// pid namespace, by the path they show; between the named process's exit
// and the renaming (a few milliseconds) another process of this host could
// judge the lock stale. Naming a process that has the file open through
// another description keeps the lock held longer, never shorter.

// sharedAncestor returns the farthest ancestor of pid, through an unbroken
// line of parents, that has the open file description open which pid has
// open on mountPath; pid itself when its parent has not.
func sharedAncestor(pid int, mountPath string) int {
	fds := fdsOn(pid, mountPath)
	for len(fds) > 0 {
		st, err := readThreadStatus(pid)
		if err != nil || st.ppid <= 1 {
			break
		}
		var shared []int
		for _, pfd := range fdsOn(st.ppid, mountPath) {
			for _, fd := range fds {
				if sameOpenFile(pid, fd, st.ppid, pfd) {
					shared = append(shared, pfd)
					break
				}
			}
		}
		if len(shared) == 0 {
			break
		}
		pid, fds = st.ppid, shared
	}
	return pid
}

// fdsOn returns the descriptors of process pid that show mountPath.
func fdsOn(pid int, mountPath string) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var fds []int
	for _, e := range entries {
		if link, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && link == mountPath {
			if fd, err := strconv.Atoi(e.Name()); err == nil {
				fds = append(fds, fd)
			}
		}
	}
	return fds
}

// sameOpenFile reports whether descriptor fd1 of pid1 and fd2 of pid2 are
// one open file description (kcmp(2) KCMP_FILE).
func sameOpenFile(pid1, fd1, pid2, fd2 int) bool {
	const kcmpFile = 0
	r, _, errno := unix.Syscall6(unix.SYS_KCMP, uintptr(pid1), uintptr(pid2), kcmpFile, uintptr(fd1), uintptr(fd2), 0)
	return errno == 0 && r == 0
}

// anyOpener returns a live process other than except that has mountPath
// open, or 0 if there is none.
func anyOpener(mountPath string, except int) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == except || pid == os.Getpid() {
			continue
		}
		if hasOpen(pid, mountPath) {
			return pid
		}
	}
	return 0
}

// keepNamed keeps the record of ol, a lock of an open file description at
// path, naming a live process while the lock is held: when the process it
// names exits, it names another that has the file open. It returns when
// ol is released.
func (fsys *filesystem) keepNamed(path string, ol *ownerLock) {
	var lock interface {
		Record() nfslock.Record
		SetOwner(pid int) error
	} = ol.shared
	released := ol.released
	if ol.hold != nil {
		lock, released = ol.hold.lock, ol.hold.released
	}
	named := lock.Record().Pid
	log := fsys.log.WithField("path", path)
	for {
		if !waitExit(named, released) {
			return
		}
		next := anyOpener(fsys.mountPath(path), named)
		if next == 0 {
			return // nobody has it open: its RELEASE is on its way
		}
		if err := lock.SetOwner(next); err != nil {
			log.WithError(err).WithField("pid", next).Warn("naming another holder of a lock whose holder exited failed")
			return
		}
		log.WithFields(logrus.Fields{"pid": next, "exited": named}).Info("the process named by a lock exited while others keep it: the record names another")
		named = next
	}
}

// waitExit waits until process pid exits, and reports true, or until done
// is closed, and reports false.
func waitExit(pid int, done <-chan struct{}) bool {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return true // gone already
	}
	defer unix.Close(pidfd)
	for {
		select {
		case <-done:
			return false
		default:
		}
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, int(keepCheckInterval/time.Millisecond)); n > 0 {
			return true
		}
	}
}

// keepCheckInterval bounds how long keepNamed takes to notice a release.
const keepCheckInterval = 100 * time.Millisecond
