//go:build linux

package fusefs

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestProcessOf checks that the thread of an open names its process, for
// the main thread (tid = pid) and for another thread of the process.
func TestProcessOf(t *testing.T) {
	if pid, err := processOf(os.Getpid()); err != nil || pid != os.Getpid() {
		t.Errorf("processOf(main thread) = %d, %v; want %d", pid, err, os.Getpid())
	}
	// Goroutines wired to threads until the test ends: the first may get
	// the main thread, the second cannot then.
	tids := make(chan int)
	release := make(chan struct{})
	defer close(release)
	tid := os.Getpid()
	for range 2 {
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tids <- unix.Gettid()
			<-release
		}()
		if tid = <-tids; tid != os.Getpid() {
			break
		}
	}
	if pid, err := processOf(tid); err != nil || pid != os.Getpid() {
		t.Errorf("processOf(thread %d) = %d, %v; want %d", tid, pid, err, os.Getpid())
	}
	if _, err := processOf(1 << 30); err == nil {
		t.Error("processOf of a thread that does not exist: no error")
	}
}
