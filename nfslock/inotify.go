//go:build linux

package nfslock

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

// releaseWatch reports removals of one P.nfs_lock seen by inotify on its
// directory. On an NFS client inotify sees the changes made from this host,
// which are exactly the releases by other processes of this host: a waiter
// wakes on them at once, and polls only for releases made elsewhere.
type releaseWatch struct {
	f        *os.File
	released chan struct{}
	done     chan struct{}
}

// watchReleases starts watching for the removal of p's lock file. It
// returns nil when inotify cannot watch the directory (the per-user limit of
// instances, a filesystem without inotify): the caller then only polls.
func watchReleases(p string) *releaseWatch {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	name := lockFile(p)
	if _, err := syscall.InotifyAddWatch(fd, filepath.Dir(name), syscall.IN_DELETE|syscall.IN_MOVED_FROM); err != nil {
		syscall.Close(fd)
		return nil
	}
	// A non-blocking descriptor goes to the runtime poller, so Close ends
	// a Read in progress.
	w := &releaseWatch{f: os.NewFile(uintptr(fd), "inotify"), released: make(chan struct{}, 1), done: make(chan struct{})}
	go w.read([]byte(filepath.Base(name)))
	return w
}

func (w *releaseWatch) read(base []byte) {
	defer close(w.done)
	buf := make([]byte, 4096)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameStart := off + syscall.SizeofInotifyEvent
			off = nameStart + int(ev.Len)
			name := bytes.TrimRight(buf[nameStart:min(off, n)], "\x00")
			if ev.Mask&syscall.IN_Q_OVERFLOW != 0 || bytes.Equal(name, base) {
				select {
				case w.released <- struct{}{}:
				default:
				}
			}
		}
	}
}

// Released is signalled after each removal of the lock file. A nil watch's
// channel is nil and never ready.
func (w *releaseWatch) Released() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.released
}

// Close stops the watch without waiting: closing an inotify instance waits
// for an RCU grace period in the kernel (milliseconds), which must not delay
// the caller that has just taken the lock. The closing goroutine ends with
// the close, and the reader ends when its Read fails.
func (w *releaseWatch) Close() {
	if w == nil {
		return
	}
	go func() {
		w.f.Close()
		<-w.done
	}()
}
