//go:build linux

package fusefs

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The signal tests start a holder, block a C program (testdata/opener.c)
// in open(2) behind it, signal the program, and check what open did.

// blockedOpener starts an opener with options on the held lock name and
// waits until its open is blocked in the daemon.
func blockedOpener(t *testing.T, m *testMount, name string, options ...string) *opener {
	t.Helper()
	waiting := m.srv.fsys.waiting.Load()
	o := startOpener(t, m.path(name), options...)
	m.waitForWaiters(t, waiting+1)
	return o
}

func signalled(err error) syscall.Signal {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ws.Signal()
		}
	}
	return 0
}

// A signal that kills the waiter ends its open at once, and the process
// dies; it never gets the lock.
func TestKillingSignalEndsBlockedOpen(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			m := mount(t, FormatText)
			m.mustHold(t, "lock")
			o := blockedOpener(t, m, "lock") // no handlers: SIGINT kills
			o.cmd.Process.Signal(sig)
			start := time.Now()
			if got := signalled(o.wait(t)); got != sig {
				t.Errorf("opener ended with signal %v, want %v", got, sig)
			}
			t.Logf("the waiter died %v after %v", time.Since(start), sig)
			if n := m.srv.fsys.waiting.Load(); n != 0 {
				t.Errorf("%d opens still waiting", n)
			}
		})
	}
}

// A handled SIGINT, SIGTERM, SIGUSR1 or SIGALRM fails the open with EINTR,
// and the program goes on.
func TestCaughtSignalFailsBlockedOpen(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1} {
		t.Run(sig.String(), func(t *testing.T) {
			m := mount(t, FormatText)
			m.mustHold(t, "lock")
			o := blockedOpener(t, m, "lock", "catch")
			o.cmd.Process.Signal(sig)
			if line := o.line(t); line != "error EINTR" {
				t.Errorf("opener said %q, want error EINTR", line)
			}
		})
	}
	t.Run("alarm", func(t *testing.T) {
		m := mount(t, FormatText)
		m.mustHold(t, "lock")
		start := time.Now()
		o := startOpener(t, m.path("lock"), "alarm=1")
		if line := o.line(t); line != "error EINTR" {
			t.Errorf("opener said %q, want error EINTR", line)
		}
		if d := time.Since(start); d < time.Second {
			t.Errorf("open failed after %v, before the alarm", d)
		}
	})
}

// A SIGCHLD (a shell's child exiting) does not fail the open: it keeps
// waiting and gets the lock.
func TestHarmlessSignalKeepsWaiting(t *testing.T) {
	m := mount(t, FormatText)
	holder := m.mustHold(t, "lock")
	o := startOpener(t, m.path("lock"), "child=100")
	m.waitForWaiters(t, 1)
	waitFor(t, "the daemon is told of the SIGCHLD", func() bool {
		return strings.Contains(m.log.String(), "the waiting caller got a signal")
	})
	time.Sleep(200 * time.Millisecond) // it goes on waiting
	holder.Close()
	if line := o.line(t); line != "opened" {
		t.Errorf("opener said %q, want opened", line)
	}
}

// After a harmless signal the kernel sends no second interrupt; a killing
// signal that follows must still end the open promptly.
func TestKillAfterHarmlessSignal(t *testing.T) {
	m := mount(t, FormatText)
	m.mustHold(t, "lock")
	o := startOpener(t, m.path("lock"), "child=50")
	m.waitForWaiters(t, 1)
	time.Sleep(200 * time.Millisecond)
	o.cmd.Process.Signal(syscall.SIGKILL)
	start := time.Now()
	if got := signalled(o.wait(t)); got != syscall.SIGKILL {
		t.Errorf("opener ended with signal %v, want SIGKILL", got)
	}
	t.Logf("the waiter died %v after SIGKILL", time.Since(start))
}

// Killing the holder releases its lock: the kernel closes its files.
func TestKilledHolderReleases(t *testing.T) {
	m := mount(t, FormatText)
	holder := startOpener(t, m.path("lock"))
	if line := holder.line(t); line != "opened" {
		t.Fatalf("holder said %q", line)
	}
	waiter := blockedOpener(t, m, "lock")
	holder.cmd.Process.Kill()
	if line := waiter.line(t); line != "opened" {
		t.Errorf("waiter said %q, want opened", line)
	}
}

// A signal that arrives as the lock is handed over either lets the open
// succeed or fails it with EINTR; after EINTR, the lock must not be left
// held for a process that was told it does not hold it.
func TestSignalRacingHandoverNeverLeaksLock(t *testing.T) {
	m := mount(t, FormatText)
	results := map[string]int{}
	for i := range 30 {
		holder := m.mustHold(t, "race")
		o := blockedOpener(t, m, "race", "catch")
		go holder.Close()
		time.Sleep(time.Duration(i%5) * 100 * time.Microsecond)
		o.cmd.Process.Signal(syscall.SIGUSR1)
		line := o.line(t)
		results[line]++
		o.stdin.Close()
		o.wait(t)
		// Either way the lock ends free: released by the daemon after
		// EINTR, or by the opener's exit.
		waitFor(t, "the lock is free", func() bool { return !m.isHeld("race") })
	}
	t.Logf("outcomes: %v", results)
	for line := range results {
		if line != "opened" && line != "error EINTR" {
			t.Errorf("opener said %q", line)
		}
	}
}
