//go:build linux

package fusefs

import (
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// An exitWatch reports its process's exit, and reports none once stopped
// while the process still runs.
func TestExitWatch(t *testing.T) {
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	watch := func() (*exitWatch, <-chan bool) {
		w, err := watchExit(sleeper.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		ended := make(chan bool, 1)
		go func() { ended <- w.wait() }()
		return w, ended
	}

	w, ended := watch()
	select {
	case exited := <-ended:
		t.Fatalf("wait returned %v while the process runs", exited)
	case <-time.After(100 * time.Millisecond):
	}
	w.stop()
	if exited := <-ended; exited {
		t.Error("wait reported an exit when stopped")
	}

	_, ended = watch()
	sleeper.Process.Kill()
	select {
	case exited := <-ended:
		if !exited {
			t.Error("wait did not report the exit")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wait missed the exit for 10 s")
	}
	sleeper.Wait()
	if _, ended = watch(); !<-ended {
		t.Error("wait of a process already gone")
	}
}

// A keptLock naming a pid that an exited process had, whose watch has yet
// to end (the pid reused meanwhile), gets a watch of its own process.
// Before, it joined the ended watch, whose end took it for a lock of the
// dead process and dropped it (no other opener to name): its process then
// ran unwatched, and its children kept the lock in the name of a dead
// process. Simulated by registering the ended watch under the live
// process's pid.
func TestKeepersWatchAReusedPidAfresh(t *testing.T) {
	start := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(name, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	gone := start("sleep", "60")
	ended, err := watchExit(gone.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer ended.pidfd.Close()
	gone.Process.Kill()
	gone.Wait()
	live := start("sleep", "60")
	ended.pid = live.Process.Pid

	var k keepers
	k.watches = map[int]*exitWatch{live.Process.Pid: ended}
	k.byLock = map[namedLock]*exitWatch{}
	lock := &fakeNamedLock{pid: live.Process.Pid}
	k.add(nil, live.Process.Pid, lock, keptLock{"lock", make(chan struct{})})
	defer k.forget(lock)
	if w := k.byLock[lock]; w == ended || w == nil {
		t.Fatalf("the lock of live process %d joined the watch of an exited one (%v)", live.Process.Pid, w)
	}
}

// A fakeNamedLock names a process and never changes.
type fakeNamedLock struct{ pid int }

func (l *fakeNamedLock) Record() nfslock.Record { return nfslock.Record{Pid: l.pid} }
func (l *fakeNamedLock) SetOwner(int) error     { return errors.New("fakeNamedLock: SetOwner") }
