package main

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Cross-host handoff (the polling path). The holder is our library in a
// worker of its own UTS namespace, with another hostname, so the waiter
// judges the lock held by another host and must poll; the waiter is our
// library or coreSim (Core's policy). Both run side by side with the same
// hold times. On a real NFS client inotify sees no release made on another
// host; here both hosts share one kernel, so strace makes the waiter's
// inotify_init1 fail (EMFILE), which the library meets by polling only. The
// same strace counts the waiter's backing-store requests: its calls on the
// lock's directory between the marks around each "lock" command.

// otherHost is the simulated holder host's name.
const otherHost = "bench-other-host"

// A policyRun is the outcome of one waiting policy.
type policyRun struct {
	name     string
	handoffs []handoff
	requests opCount // per handoff, by system call, while waiting
}

// waited is the waiters' total time spent in acquire.
func (r policyRun) waited() time.Duration {
	var d time.Duration
	for _, h := range r.handoffs {
		d += h.waited
	}
	return d
}

// requestsPerSecond is the backing-store requests per second of waiting,
// per waiter.
func (r policyRun) requestsPerSecond() float64 {
	return r.requests.total() * float64(len(r.handoffs)) / r.waited().Seconds()
}

// crossHostHolds are the hold times both policies face: uniform over
// [100 ms, 2 s], long enough to reach our maximal poll interval, short
// enough for a bounded run.
func crossHostHolds(n int, seed uint64) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, 2))
	holds := make([]time.Duration, n)
	for i := range holds {
		holds[i] = 100*time.Millisecond + time.Duration(rng.Int64N(int64(1900*time.Millisecond)))
	}
	return holds
}

// crossHost runs the handoffs for each waiting policy (a worker locker
// name) at once, each over pairs holder/waiter pairs.
func crossHost(s *setup, policies []string, holds []time.Duration, pairs int) ([]policyRun, error) {
	runs := make([]policyRun, len(policies))
	errs := make([]error, len(policies))
	var wg sync.WaitGroup
	for i, policy := range policies {
		wg.Go(func() { runs[i], errs[i] = crossHostPolicy(s, policy, holds, pairs) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return runs, err
		}
	}
	return runs, nil
}

func crossHostPolicy(s *setup, policy string, holds []time.Duration, pairs int) (policyRun, error) {
	run := policyRun{name: policy, requests: opCount{}}
	root := filepath.Join(s.work, "crosshost", policy)
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for i := range pairs {
		dir := filepath.Join(root, fmt.Sprint(i))
		t := &tool{root: dir}
		lockDir, err := t.lockDir("lock")
		if err != nil {
			return run, err
		}
		lock := filepath.Join(lockDir, "L")
		holder := s.goWorker("library")(lock)
		holder.argv = append(holder.argv, "-hostname", otherHost)
		holder.clone = syscall.CLONE_NEWUTS
		waiter := s.goWorker(policy)(lock)
		trace := filepath.Join(s.scratch, "crosshost-"+policy+fmt.Sprint(i)+".strace")
		waiter.argv = append([]string{"strace", "-f", "--seccomp-bpf", "-qq", "-y",
			"-e", "trace=%file,%desc,inotify_init1", "-e", "inject=inotify_init1:error=EMFILE", "-o", trace}, waiter.argv...)
		var mine []time.Duration
		for j := i; j < len(holds); j += pairs {
			mine = append(mine, holds[j])
		}
		wg.Go(func() {
			hs, err := handoffPair(holder, waiter, mine, false)
			if err == nil {
				var c opCount
				c, err = countCalls(trace, lockDir, "lock", 1)
				mu.Lock()
				for k, v := range c {
					run.requests[k] += v
				}
				mu.Unlock()
			}
			mu.Lock()
			defer mu.Unlock()
			run.handoffs = append(run.handoffs, hs...)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	for k := range run.requests {
		run.requests[k] /= float64(len(run.handoffs))
	}
	if len(errs) > 0 {
		return run, errs[0]
	}
	return run, nil
}
