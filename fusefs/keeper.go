//go:build linux

package fusefs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// A lock held by an open file description outlives the process that took
// it when others share the description. `exec 9>lock; daemon &` keeps the
// lock that the shell's open took in the daemon after the shell exits, as
// with flock(2). `exec 9<lock; flock 9` takes a flock lock in flock(1),
// which exits at once while the shell keeps descriptor 9. The record must
// name a live process that has the description open, or another process of
// this host (the CLI, Core, another daemon) would judge the lock stale
// while it is held, and take it. So a flock lock's record names the
// farthest ancestor of the requester that shares the description
// (sharedAncestor; an open's description is new, only its opener has it),
// and when the process a record names exits while the description is still
// open, keepNamed names another live process that has the lock file open
// through the mount.
//
// Between the named process's exit and the renaming (a few milliseconds,
// more on a loaded node) the record names a dead process of this host. The
// daemon vouches for every lock it holds (nfslock.WithVouch), so that the
// other processes of this package on the node (the CLI, programs using the
// library, another daemon) take the lock for held meanwhile.
//
// Limits: a process is found by its descriptors in /proc of the daemon's
// pid namespace, by the path they show. A Core process on the node does not
// know vouches and can judge the lock stale in that window. Naming a
// process that has the file open through another description keeps the
// lock held longer, never shorter.

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
// open, or 0 if there is none or released is closed first. It reads the
// descriptors of every process of the machine (hundreds of readlinks for
// an init or a desktop session alone), newest first: a child that keeps
// the file is newer than its parent. Most often the process that exited
// was the last opener and its RELEASE comes within a millisecond, so the
// search stops there, before the old processes with many descriptors.
func anyOpener(mountPath string, except int, released <-chan struct{}) int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	pids := make([]int, 0, len(entries))
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != except && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	for _, pid := range slices.Backward(pids) {
		select {
		case <-released:
			return 0
		default:
		}
		if hasOpen(pid, mountPath) {
			return pid
		}
	}
	return 0
}

// A namedLock is a held lock whose record names a process: an exclusive
// lock (*nfslock.Lock) or a shared one (*nfslock.SharedLock).
type namedLock interface {
	Record() nfslock.Record
	SetOwner(pid int) error
}

// keepers watch the processes that held locks' records name, one watch
// per process however many locks name it: a process holding ten thousand
// locks through the mount costs one pidfd and one goroutine, not one per
// lock (two goroutines per held lock made the daemon's memory grow from 20
// to 156 MiB for 10,000 held locks, docs/benchmarks.md).
type keepers struct {
	mu      sync.Mutex
	watches map[int]*exitWatch       // by the pid watched
	byLock  map[namedLock]*exitWatch // the watch of each kept lock
}

// A keptLock is a held lock's path and the channel closed once the lock
// is released.
type keptLock struct {
	path     string
	released <-chan struct{}
}

// keepNamed keeps the record of lock, held by an open file description of
// the lock file at path, naming a live process while the lock is held: when
// the process it names exits, it names another that has the file open.
// The lock's releaser must call keepers.forget once released is closed.
func (fsys *filesystem) keepNamed(path string, lock namedLock, released <-chan struct{}) {
	fsys.keepers.add(fsys, lock.Record().Pid, lock, keptLock{path, released})
}

// add keeps lock, which names pid, until it is forgotten or pid exits. A
// lock released already is not added, so that a lock renamed as it is
// released is not kept after its forget.
func (k *keepers) add(fsys *filesystem, pid int, lock namedLock, kl keptLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	select {
	case <-kl.released:
		return
	default:
	}
	w := k.watches[pid]
	if w == nil || w.exited() {
		// An exited process's watch may not have ended yet while its pid
		// names another process already: that one gets a watch of its own.
		var err error
		if w, err = watchExit(pid); err != nil {
			// The record is kept as it is, as before keepers existed: should
			// pid exit while a child keeps the file, the daemon's vouch alone
			// keeps the lock held, for this package's processes only.
			fsys.log.WithError(err).WithFields(logrus.Fields{"path": kl.path, "pid": pid}).
				Warn("cannot watch the process a lock names; if it exits while others keep the file, the record keeps naming it")
			return
		}
		if k.watches == nil {
			k.watches, k.byLock = make(map[int]*exitWatch), make(map[namedLock]*exitWatch)
		}
		k.watches[pid] = w
		go k.await(fsys, w) // ends when pid exits or its last lock is forgotten
	}
	w.locks[lock] = kl
	k.byLock[lock] = w
}

// forget stops keeping lock, once its release has closed its released
// channel; the watch of its process ends with its last lock.
func (k *keepers) forget(lock namedLock) {
	k.mu.Lock()
	defer k.mu.Unlock()
	w := k.byLock[lock]
	if w == nil {
		return
	}
	delete(k.byLock, lock)
	delete(w.locks, lock)
	if len(w.locks) == 0 {
		if k.watches[w.pid] == w {
			delete(k.watches, w.pid)
		}
		w.stop() // replaced or not (see add), nothing is left to keep
	}
}

// await waits for w's process to exit, or its watch to stop, and names
// another holder in each lock that named the process and is still held.
func (k *keepers) await(fsys *filesystem, w *exitWatch) {
	exited := w.wait()
	k.mu.Lock()
	if k.watches[w.pid] == w {
		delete(k.watches, w.pid)
	}
	locks := w.locks
	w.locks = nil
	for lock := range locks {
		delete(k.byLock, lock)
	}
	k.mu.Unlock()
	if !exited {
		return
	}
	for lock, kl := range locks {
		fsys.nameNext(lock, kl, w.pid)
	}
}

// nameNext names in lock, whose named process exited, another live
// process that has its file open, and keeps it. It does nothing once the
// lock is released, or when no process has the file open (its RELEASE is
// then on its way).
func (fsys *filesystem) nameNext(lock namedLock, kl keptLock, exited int) {
	next := anyOpener(fsys.mountPath(kl.path), exited, kl.released)
	if next == 0 {
		return
	}
	log := fsys.log.WithField("path", kl.path)
	if err := lock.SetOwner(next); err != nil {
		log.WithError(err).WithField("pid", next).Warn("naming another holder of a lock whose holder exited failed")
		return
	}
	log.WithFields(logrus.Fields{"pid": next, "exited": exited}).Info("the process named by a lock exited while others keep it: the record names another")
	fsys.keepers.add(fsys, next, lock, kl)
}

// An exitWatch waits for one process to exit. It waits in the runtime's
// network poller on a pidfd, so the watch costs no thread and no wakeups.
type exitWatch struct {
	pid   int
	pidfd *os.File // nil: the process was gone already
	locks map[namedLock]keptLock
}

// watchExit starts watching process pid. It fails when the process cannot
// be watched, except when it is gone already: then wait reports its exit
// at once.
func watchExit(pid int) (*exitWatch, error) {
	w := &exitWatch{pid: pid, locks: make(map[namedLock]keptLock)}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	switch {
	case errors.Is(err, unix.ESRCH):
		return w, nil
	case err != nil:
		return nil, err
	}
	w.pidfd = os.NewFile(uintptr(fd), "pidfd") // non-blocking: registered with the poller
	return w, nil
}

// wait waits until the process exits, and reports true, or until stop is
// called, and reports false. It closes the pidfd.
func (w *exitWatch) wait() bool {
	if w.pidfd == nil {
		return true
	}
	defer w.pidfd.Close()
	conn, err := w.pidfd.SyscallConn()
	if err != nil {
		return false
	}
	return conn.Read(func(fd uintptr) bool {
		readable, err := pidfdReadable(fd)
		return err == nil && readable
	}) == nil
}

// pidfdReadable reports, without waiting, whether pidfd fd is readable:
// whether its process has exited.
func pidfdReadable(fd uintptr) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return n > 0, err
}

// exited reports whether the process has exited (or its watch has
// ended): a new lock naming its pid must not join the watch.
func (w *exitWatch) exited() bool {
	if w.pidfd == nil {
		return true
	}
	conn, err := w.pidfd.SyscallConn()
	if err != nil {
		return true
	}
	readable := true
	if err := conn.Control(func(fd uintptr) {
		r, err := pidfdReadable(fd)
		readable = err != nil || r
	}); err != nil {
		return true // closed: wait has returned
	}
	return readable
}

// stop ends wait, which then reports false.
func (w *exitWatch) stop() {
	if w.pidfd != nil {
		w.pidfd.SetReadDeadline(time.Now())
	}
}
