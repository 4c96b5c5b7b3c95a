package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CrossHost: handoffs on the polling path. The holder is our library in a
// worker of its own UTS namespace, with another hostname, so the waiter
// judges the lock held by another host and must poll; the waiter is our
// library or coreSim (Core's policy), side by side with the same hold
// times. On a real NFS client inotify sees no release made on another host;
// here both hosts share one kernel, so strace makes the waiter's
// inotify_init1 fail (EMFILE), which the library meets by polling only. The
// same strace counts the waiter's requests: its calls on the lock's
// directory between the marks around each "lock" command.

// otherHost is the simulated holder host's name.
const otherHost = "bench-other-host"

// measureCrossHost records one sample per handoff ("CrossHost") and, per
// waiter, the requests per handoff and per second of waiting ("CrossHostLoad").
func measureCrossHost(rec *recorder, s *setup, sz sizes) error {
	holds := holdTimes(sz.crossHandoffs, 100*time.Millisecond, sz.crossHoldMax)
	waiters := []struct{ name, locker string }{{"nfslock-lib", "library"}, {"core-policy", "coresim"}}
	errs := make([]error, len(waiters)*sz.crossPairs)
	var wg sync.WaitGroup
	for i, w := range waiters {
		var mu sync.Mutex
		var requests float64
		var waited time.Duration
		var pairs sync.WaitGroup
		for j := range sz.crossPairs {
			lockDir := filepath.Join(s.work, "crosshost", w.name, fmt.Sprint(j))
			lock := filepath.Join(lockDir, "L")
			holder := s.goWorker("library")(lock)
			holder.argv = append(holder.argv, "-hostname", otherHost)
			holder.clone = syscall.CLONE_NEWUTS
			waiter := s.goWorker(w.locker)(lock)
			trace := filepath.Join(s.scratch, fmt.Sprintf("crosshost-%s-%d.strace", w.name, j))
			waiter.argv = append([]string{"strace", "-f", "--seccomp-bpf", "-qq", "-y", "-e", "trace=%file,%desc,inotify_init1",
				"-e", "inject=inotify_init1:error=EMFILE", "-o", trace}, waiter.argv...)
			mine := holds[j*len(holds)/sz.crossPairs : (j+1)*len(holds)/sz.crossPairs]
			pairs.Go(func() {
				err := os.MkdirAll(lockDir, 0o755)
				if err == nil {
					err = handoffPair(holder, waiter, mine, false, func(latency, w time.Duration) {
						rec.sample("CrossHost", waiters[i].name, 1, metric{float64(latency), "ns/op"})
						mu.Lock()
						waited += w
						mu.Unlock()
					})
				}
				var calls float64
				if err == nil {
					calls, err = countCalls(trace, lockDir, "lock")
				}
				mu.Lock()
				requests += calls
				mu.Unlock()
				errs[i*sz.crossPairs+j] = err
			})
		}
		wg.Go(func() {
			pairs.Wait()
			rec.sample("CrossHostLoad", w.name, int64(len(holds)), metric{requests / float64(len(holds)), "requests/handoff"},
				metric{requests / waited.Seconds(), "requests/s"})
		})
	}
	wg.Wait()
	return firstError(errs)
}

// localOnly are calls that name a file but never reach a file server:
// descriptor bookkeeping, and the exec of a command whose arguments name
// the lock.
var localOnly = map[string]bool{"epoll_ctl": true, "lseek": true, "ioctl": true, "fadvise64": true,
	"execve": true, "execveat": true, "dup": true, "dup2": true, "dup3": true}

// countCalls counts the requests in an strace -f -y output: the calls that
// name dir and may reach a file server, between each markPrefix+mark and
// the next markPrefix+mark+"-done".
func countCalls(trace, dir, mark string) (float64, error) {
	data, err := os.ReadFile(trace)
	if err != nil {
		return 0, err
	}
	var n float64
	inside := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.Contains(line, `"`+markPrefix+mark+`"`):
			inside = true
		case strings.Contains(line, `"`+markPrefix+mark+`-done"`):
			inside = false
		case inside && strings.Contains(line, dir):
			// The first word after the pid is the call; "<..." resumes one.
			_, rest, _ := strings.Cut(line, " ")
			name, _, ok := strings.Cut(strings.TrimLeft(rest, " "), "(")
			if ok && !strings.HasPrefix(name, "<...") && !localOnly[name] && (name != "fcntl" || strings.Contains(line, "LK")) {
				n++
			}
		}
	}
	return n, nil
}
