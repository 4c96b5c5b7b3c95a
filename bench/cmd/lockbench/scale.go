package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Scale: this process holds many locks at once through the mount (daemon
// memory, `ls` time), then queues many waiters on one lock (daemon memory,
// and whether the lock is handed on in the order they came).
func measureScale(rec *recorder, d *daemon, holder func(string) spec, locks, waiters int) error {
	if err := holdMany(rec, d, locks); err != nil {
		return err
	}
	return queueMany(rec, d, holder, waiters)
}

func holdMany(rec *recorder, d *daemon, n int) error {
	rssBefore := d.rss()
	dir := filepath.Join(d.mnt, "scale-held")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := raiseFileLimit(uint64(n) + 256); err != nil {
		return err
	}
	fds := make([]int, 0, n)
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()
	start := time.Now()
	for i := range n {
		fd, err := syscall.Open(filepath.Join(dir, fmt.Sprintf("lock-%05d", i)), syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC|syscall.O_CLOEXEC, 0o666)
		if err != nil {
			return fmt.Errorf("lock %d of %d: %w", i, n, err)
		}
		fds = append(fds, fd)
	}
	opened := time.Since(start)
	rssHeld := d.rss()
	var out bytes.Buffer
	ls := exec.Command("ls", dir)
	ls.Stdout = &out
	start = time.Now()
	if err := ls.Run(); err != nil {
		return err
	}
	listed := time.Since(start)
	start = time.Now()
	for _, fd := range fds {
		syscall.Close(fd)
	}
	fds = nil
	closed := time.Since(start)
	time.Sleep(time.Second) // releases follow the closes asynchronously
	rec.sample("ScaleHeld", "mount-go", int64(n), metric{float64(opened) / float64(n), "ns/op"},
		metric{float64(rssBefore), "rss-before-B"}, metric{float64(rssHeld), "rss-held-B"}, metric{float64(d.rss()), "rss-after-B"},
		metric{float64(listed), "ls-ns"}, metric{float64(strings.Count(out.String(), "\n")), "names-listed"},
		metric{float64(closed), "close-all-ns"})
	return nil
}

// queueMany queues n waiters on one lock that a holder process keeps (a
// process reopening a lock it holds gets EDEADLK), each waiter a thread of
// this process blocked in open, started only once the one before it is
// blocked; then releases the lock and records the order in which they get
// it. Each waiter releases at once, so the lock passes down the queue.
func queueMany(rec *recorder, d *daemon, holderSpec func(string) spec, n int) error {
	rssBefore := d.rss()
	dir := filepath.Join(d.mnt, "scale-wait")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	lock := filepath.Join(dir, "L")
	flags := syscall.O_WRONLY | syscall.O_CREAT | syscall.O_TRUNC | syscall.O_CLOEXEC
	holder, err := startProc(holderSpec(lock))
	if err != nil {
		return err
	}
	defer holder.stop()
	if _, err := holder.call("lock"); err != nil {
		return err
	}
	var (
		mu    sync.Mutex
		order []int
		errs  []error
		wg    sync.WaitGroup
	)
	for i := range n {
		tid := make(chan int)
		wg.Go(func() {
			// The thread is the waiter's identity until its open returns.
			// Unlocking it afterwards keeps it alive: a thread that ends
			// would send its Pdeathsig to the processes forked from it.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			tid <- unix.Gettid()
			fd, err := syscall.Open(lock, flags, 0o666)
			mu.Lock()
			order = append(order, i)
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
			if err == nil {
				syscall.Close(fd)
			}
		})
		if err := waitBlockedInOpen(<-tid); err != nil {
			holder.call("unlock")
			wg.Wait()
			return fmt.Errorf("waiter %d: %w", i, err)
		}
	}
	rssWaiting := d.rss()
	start := time.Now()
	if _, err := holder.call("unlock"); err != nil {
		return err
	}
	wg.Wait()
	drain := time.Since(start)
	var outOfOrder, farthest int
	for i, w := range order {
		if w != i {
			outOfOrder++
			farthest = max(farthest, i-w, w-i)
		}
	}
	rec.sample("ScaleQueue", "mount-go", int64(n), metric{float64(drain) / float64(n), "ns/op"},
		metric{float64(rssBefore), "rss-before-B"}, metric{float64(rssWaiting), "rss-waiting-B"},
		metric{float64(outOfOrder), "out-of-order"}, metric{float64(farthest), "farthest-places"})
	return firstError(errs)
}

// queueMargin is ample time for the daemon to take a request it was sent
// into its queue, even on a loaded machine.
const queueMargin = 5 * time.Millisecond

// waitBlockedInOpen waits until thread tid of this process waits for the
// answer to its FUSE OPEN or CREATE request (its kernel stack says so; the
// LOOKUP before it does not count), and then queueMargin more for the
// daemon to read the request and queue the waiter.
func waitBlockedInOpen(tid int) error {
	stack := fmt.Sprintf("/proc/self/task/%d/stack", tid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Microsecond) {
		s, _ := os.ReadFile(stack)
		if bytes.Contains(s, []byte("request_wait_answer")) &&
			(bytes.Contains(s, []byte("fuse_send_open")) || bytes.Contains(s, []byte("fuse_create_open"))) {
			time.Sleep(queueMargin)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("thread %d not waiting for its open after 10s; kernel stack: %q", tid, s)
		}
	}
}

func raiseFileLimit(n uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= n {
		return nil
	}
	lim.Cur = max(lim.Cur, n)
	lim.Max = max(lim.Max, n)
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}
