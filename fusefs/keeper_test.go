//go:build linux

package fusefs

import (
	"os/exec"
	"testing"
	"time"
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
