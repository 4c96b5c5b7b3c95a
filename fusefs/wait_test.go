//go:build linux

package fusefs

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// Waiters on one node for one lock get it in the order they came.
func TestWaitersServedInArrivalOrder(t *testing.T) {
	m := mount(t, FormatText)
	holder := m.holdElsewhere(t, "queue")
	const n = 5
	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			f, err := m.openWrite("queue", 0)
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			time.Sleep(5 * time.Millisecond) // hold it a moment
			f.Close()
		})
		waitFor(t, "the open has queued in the library", func() bool {
			return strings.Count(m.log.String(), "queued for lock behind this process") == i+1
		})
	}
	holder.Close()
	wg.Wait()
	for i, w := range order {
		if w != i {
			t.Fatalf("waiters got the lock in order %v, want 0..%d", order, n-1)
		}
	}
}

// Hundreds of blocked opens do not slow down the rest of the filesystem:
// cat of another lock still answers at once.
func TestManyBlockedOpensLeaveOthersResponsive(t *testing.T) {
	m := mount(t, FormatText)
	holder := m.holdElsewhere(t, "busy")
	m.mustHold(t, "other")
	const n = 200
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			f, err := m.openWrite("busy", 0)
			if err != nil {
				t.Error(err)
				return
			}
			f.Close()
		})
	}
	m.waitForWaiters(t, n)

	var slowest time.Duration
	for range 20 {
		start := time.Now()
		data, err := os.ReadFile(m.path("other"))
		slowest = max(slowest, time.Since(start))
		if err != nil || !strings.Contains(string(data), "pid: ") {
			t.Fatalf("cat other: %q, %v", data, err)
		}
		if _, err := os.ReadDir(m.dir); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("with %d opens blocked, the slowest of 20 reads of another lock took %v", n, slowest)
	// A generous bound: the property is "answers at once", not a benchmark.
	if slowest > 500*time.Millisecond {
		t.Errorf("reading another lock took %v with %d opens blocked", slowest, n)
	}

	holder.Close()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%d opens still blocked a minute after the release", m.srv.fsys.waiting.Load())
	}
}

// A lock held on another host (a record naming another hostname) blocks
// opens until it is removed there.
func TestLockOfAnotherHostBlocksUntilRemoved(t *testing.T) {
	m := mount(t, FormatText)
	record := `((host other-node)(pid 4242)(message "nightly build"))`
	if err := os.WriteFile(m.lockPath("remote")+nfslock.LockSuffix, []byte(record), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(m.path("remote")); !strings.Contains(string(data), "host: other-node\n") {
		t.Errorf("cat shows %q", data)
	}
	if err := m.tryOpen("remote", syscall.O_NONBLOCK); err == nil || !strings.Contains(err.Error(), "resource temporarily unavailable") {
		t.Errorf("non-blocking open: %v, want EAGAIN", err)
	}
	m.blockedOpen(t, "remote").mustWaitFor(t, 300*time.Millisecond, "the other host released", func() {
		os.Remove(m.lockPath("remote") + nfslock.LockSuffix)
	})
}

// A record left by a dead process of this host is stale: the next open
// cleans it up and takes the lock at once.
func TestStaleLockOfThisHostIsTakenOver(t *testing.T) {
	m := mount(t, FormatText)
	host, _ := os.Hostname()
	dead := deadPid(t)
	record := fmt.Sprintf(`((host %s)(pid %d)(message "crashed job"))`, host, dead)
	if err := os.WriteFile(m.lockPath("stale")+nfslock.LockSuffix, []byte(record), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := m.openWrite("stale", syscall.O_NONBLOCK)
	if err != nil {
		t.Fatalf("open of a stale lock: %v", err)
	}
	defer f.Close()
	rec, err := nfslock.ReadRecord(m.lockPath("stale"))
	if err != nil || rec.Pid != os.Getpid() {
		t.Errorf("record after takeover: %+v, %v", rec, err)
	}
}

// deadPid returns the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	p.Wait()
	return p.Pid
}

// Waiting for a lock must not stall its directory. The kernel holds the
// directory locked while it creates a name (CREATE), so an open with O_CREAT
// that would wait there is sent back to wait as an OPEN; creates, opens and
// listings of other locks in the directory go on meanwhile.
func TestContendedLockDoesNotStallItsDirectory(t *testing.T) {
	m := mount(t, FormatText)
	const hold, contenders = 100 * time.Millisecond, 8
	// Contenders are processes of their own: one process opening a lock it
	// holds gets EDEADLK.
	var (
		stopping, failed atomic.Bool
		wg               sync.WaitGroup
		procs            []*exec.Cmd
	)
	for range contenders {
		p := exec.Command("bash", "-c", `while :; do exec 9>"$1"; sleep 0.1; exec 9>&-; done`, "contender", m.path("hot"))
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
		wg.Go(func() {
			p.Wait()
			if !stopping.Load() {
				failed.Store(true) // its open failed: the shell exits
			}
		})
	}
	defer func() {
		stopping.Store(true)
		for _, p := range procs {
			p.Process.Kill()
		}
		wg.Wait()
	}()
	var slowest time.Duration
	for end := time.Now().Add(12 * hold); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		start := time.Now()
		f, err := m.openWrite("other", 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if _, err := os.ReadDir(m.dir); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(start))
	}
	if failed.Load() {
		t.Error("a contender's open failed")
	}
	t.Logf("while %d processes took turns holding a lock for %v, the slowest create, close and ls of another took %v", contenders, hold, slowest)
	if slowest >= hold {
		t.Errorf("a create and ls of another lock took %v: the directory stalled behind a waiting create", slowest)
	}
	if !strings.Contains(m.log.String(), "create answered ESTALE") {
		t.Log("no create raced with a release this time")
	}
}

// createLock, deterministically: a CREATE that finds the lock taken since
// its LOOKUP is answered ESTALE (the kernel then retries it as an OPEN);
// the same caller's retry of the same create waits.
func TestCreateOfTakenLockIsRetriedAsOpen(t *testing.T) {
	m := mount(t, FormatText)
	holder := m.holdElsewhere(t, "raced")
	caller := &fuse.Context{Caller: fuse.Caller{Pid: uint32(syscall.Gettid())}, Cancel: make(chan struct{})}
	path := m.lockPath("raced")
	flags := uint32(syscall.O_WRONLY | syscall.O_CREAT)
	if _, errno := m.srv.fsys.createLock(caller, path, flags); errno != syscall.ESTALE {
		t.Fatalf("create of a taken lock: %v, want ESTALE", errno)
	}
	got := make(chan syscall.Errno, 1)
	go func() {
		h, errno := m.srv.fsys.createLock(caller, path, flags)
		if errno == 0 { // no kernel file holds it: release it here
			h.lock.Unlock()
			m.srv.fsys.forget(h)
		}
		got <- errno
	}()
	m.waitForWaiters(t, 1)
	holder.Close()
	select {
	case errno := <-got:
		if errno != 0 {
			t.Fatalf("retried create: %v", errno)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the retried create still waits 5s after the release")
	}
}
