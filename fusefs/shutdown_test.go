//go:build linux

package fusefs

import (
	"bufio"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// Shutdown fails blocked opens with EINTR, detaches a busy mount, and
// leaves the locks of live holders held until they close them.
func TestShutdownWithHolderAndWaiter(t *testing.T) {
	m := mount(t, FormatText)
	holder := startOpener(t, m.path("lock"))
	if line := holder.line(t); line != "opened" {
		t.Fatalf("holder said %q", line)
	}
	waiter := blockedOpener(t, m, "lock", "catch")

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown <- m.srv.Shutdown(ctx)
	}()
	if line := waiter.line(t); line != "error EINTR" {
		t.Errorf("waiter said %q, want error EINTR", line)
	}
	waitFor(t, "the mount is detached", func() bool { return !mounted(t, m.dir) })
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) while a holder still had the lock open", err)
	case <-time.After(100 * time.Millisecond):
	}
	if !m.isHeld("lock") {
		t.Fatal("the lock of a live holder was released by the shutdown")
	}

	holder.stdin.Close() // the holder closes its file and exits
	holder.wait(t)
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown still waiting 5s after the last holder closed")
	}
	// The holder's RELEASE may be lost with the detached mount: the lock is
	// then stale, and the next acquirer of this host takes it over.
	h, err := nfslock.Inspect(m.lockPath("lock"))
	if err == nil && h.State != nfslock.HolderDead {
		t.Errorf("after shutdown the lock is held by a %v holder", h.State)
	}
	t.Logf("after the holder exited: %v\n%s", err, m.log)
}

// mounted reports whether dir is a mountpoint of this process's namespace.
func mounted(t *testing.T, dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 4 && fields[4] == dir {
			return true
		}
	}
	return false
}
