//go:build linux

package fusefs

import (
	"os/exec"
	"testing"
	"time"
)

// waitExit reports a process's exit, and returns false once done is
// closed while the process still runs.
func TestWaitExit(t *testing.T) {
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })

	done := make(chan struct{})
	ended := make(chan bool, 1)
	go func() { ended <- waitExit(sleeper.Process.Pid, done) }()
	select {
	case exited := <-ended:
		t.Fatalf("waitExit returned %v while the process runs", exited)
	case <-time.After(100 * time.Millisecond):
	}
	close(done)
	if exited := <-ended; exited {
		t.Error("waitExit reported an exit when done was closed")
	}

	go func() { ended <- waitExit(sleeper.Process.Pid, make(chan struct{})) }()
	sleeper.Process.Kill()
	select {
	case exited := <-ended:
		if !exited {
			t.Error("waitExit did not report the exit")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waitExit missed the exit for 10 s")
	}
	if !waitExit(sleeper.Process.Pid, make(chan struct{})) {
		t.Error("waitExit of a process already gone")
	}
}
