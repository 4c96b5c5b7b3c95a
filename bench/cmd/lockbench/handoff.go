package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Figure 2: handoff latency. A holder releases at a recorded instant while
// a waiter, another process, is blocked acquiring; the handoff is the time
// from just before the release to just after the waiter's acquire returns,
// on CLOCK_MONOTONIC read by each process itself.

// A handoff is one measured release-to-acquire.
type handoff struct {
	latency time.Duration // release → acquired
	waited  time.Duration // the waiter's whole wait: started acquiring → acquired
}

// sameHostHolds are the times a holder keeps the lock while the waiter
// blocks: long enough for any waiter to be blocked, and spread so that a
// waiter sleeping on a timer is caught at every phase of it.
func sameHostHolds(n int, seed uint64) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, 1))
	holds := make([]time.Duration, n)
	for i := range holds {
		holds[i] = 20*time.Millisecond + time.Duration(rng.Int64N(int64(80*time.Millisecond)))
	}
	return holds
}

// handoffs measures len(holds) handoffs of t between processes of this
// host, spread over pairs of processes that run at the same time, each
// pair on its own lock (only worth it for tools that sleep seconds).
func handoffs(t *tool, holds []time.Duration, pairs int) ([]handoff, error) {
	var (
		mu   sync.Mutex
		all  []handoff
		errs []error
		wg   sync.WaitGroup
	)
	for i := range pairs {
		lock, err := t.lockPath(fmt.Sprintf("handoff%d", i))
		if err != nil {
			return nil, err
		}
		var mine []time.Duration
		for j := i; j < len(holds); j += pairs {
			mine = append(mine, holds[j])
		}
		wg.Go(func() {
			hs, err := handoffPair(t.spec(lock), t.spec(lock), mine, true)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, hs...)
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return all, errs[0]
	}
	return all, nil
}

// handoffPair runs one handoff per hold between a holder and a waiter
// process. With swap the two trade roles after each handoff, so that each
// starts every other wait afresh.
func handoffPair(holderSpec, waiterSpec spec, holds []time.Duration, swap bool) ([]handoff, error) {
	holder, err := startProc(holderSpec)
	if err != nil {
		return nil, err
	}
	defer holder.stop()
	waiter, err := startProc(waiterSpec)
	if err != nil {
		return nil, err
	}
	defer waiter.stop()
	var out []handoff
	for _, hold := range holds {
		if _, err := holder.call("lock"); err != nil {
			return out, err
		}
		if err := waiter.send("lock"); err != nil {
			return out, err
		}
		time.Sleep(hold)
		rel, err := holder.call("unlock")
		if err != nil {
			return out, err
		}
		acq, err := waiter.recv()
		if err != nil {
			return out, err
		}
		out = append(out, handoff{latency: time.Duration(acq[0] - rel[0]), waited: time.Duration(acq[0] - acq[1])})
		if _, err := waiter.call("unlock"); err != nil {
			return out, err
		}
		if swap {
			holder, waiter = waiter, holder
		}
	}
	return out, nil
}

func latencies(hs []handoff) []time.Duration {
	ds := make([]time.Duration, len(hs))
	for i, h := range hs {
		ds[i] = h.latency
	}
	return ds
}
