package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Cycle: a worker takes and releases a free lock over and over, after a
// warm-up, in runs of about runTime; one sample per run. Libraries are
// called in-process; commands are run once per lock (and once per unlock
// where they have one), so their rows include process starts, which the
// rows "true" and "go-noop" measure alone.
func measureCycle(rec *recorder, t *tool, runs int, runTime time.Duration) error {
	p, err := startProc(t.spec(t.lock("cycle")))
	if err != nil {
		return err
	}
	defer p.stop()
	const warm = 5
	got, err := p.call(fmt.Sprint("cycles ", warm))
	if err != nil {
		return err
	}
	n := min(max(int64(runTime)*warm/max(got[0], 1), 5), 100000)
	for range runs {
		got, err := p.call(fmt.Sprint("cycles ", n))
		if err != nil {
			return err
		}
		rec.sample("Cycle", t.name, n, metric{float64(got[0]) / float64(n), "ns/op"})
	}
	return nil
}

// Handoff: a holder releases at a recorded instant while a waiter, another
// process, is blocked acquiring; one sample per handoff, from just before
// the release to just after the waiter's acquire returns, on
// CLOCK_MONOTONIC read by each process itself. Holder and waiter swap roles
// after each handoff. Tools that sleep seconds run over several pairs at
// once, each pair on its own lock.
func measureHandoffs(rec *recorder, t *tool, n, pairs int) error {
	holds := holdTimes(n, 20*time.Millisecond, 100*time.Millisecond)
	errs := make([]error, pairs)
	var wg sync.WaitGroup
	for i := range pairs {
		lock := t.lock(fmt.Sprint("handoff", i))
		wg.Go(func() {
			errs[i] = handoffPair(t.spec(lock), t.spec(lock), holds[i*n/pairs:(i+1)*n/pairs], true,
				func(latency, waited time.Duration) {
					rec.sample("Handoff", t.name, 1, metric{float64(latency), "ns/op"})
				})
		})
	}
	wg.Wait()
	return firstError(errs)
}

// holdTimes are the times a holder keeps the lock while the waiter blocks,
// uniform in [lo, hi]: long enough for any waiter to be blocked, and spread
// so that a waiter sleeping on a timer is caught at every phase of it.
func holdTimes(n int, lo, hi time.Duration) []time.Duration {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(hi)))
	holds := make([]time.Duration, n)
	for i := range holds {
		holds[i] = lo + time.Duration(rng.Int64N(int64(hi-lo)))
	}
	return holds
}

// handoffPair runs one handoff per hold between a holder and a waiter
// process, and gives each one's latency and the waiter's whole wait to
// record. With swap the two trade roles after each handoff, so that each
// starts every other wait afresh.
func handoffPair(holderSpec, waiterSpec spec, holds []time.Duration, swap bool, record func(latency, waited time.Duration)) error {
	holder, err := startProc(holderSpec)
	if err != nil {
		return err
	}
	defer holder.stop()
	waiter, err := startProc(waiterSpec)
	if err != nil {
		return err
	}
	defer waiter.stop()
	for _, hold := range holds {
		if _, err := holder.call("lock"); err != nil {
			return err
		}
		if err := waiter.send("lock"); err != nil {
			return err
		}
		time.Sleep(hold)
		rel, err := holder.call("unlock")
		if err != nil {
			return err
		}
		acq, err := waiter.recv()
		if err != nil {
			return err
		}
		record(time.Duration(acq[0]-rel[0]), time.Duration(acq[0]-acq[1]))
		if _, err := waiter.call("unlock"); err != nil {
			return err
		}
		if swap {
			holder, waiter = waiter, holder
		}
	}
	return nil
}

// Contend: procs processes take and release one lock as fast as they can
// for d; ContendSpread: as many on each of locks locks at once (many busy
// locks of one mount, against flock(2) on as many local files). Each
// appends "ID +" to its lock's log right after acquiring and "ID -" right
// before releasing; checkLog counts from the log alone the acquires made
// while another process held the lock. The control tool takes no lock, so
// its overlaps show that the checker sees them.
func measureContention(rec *recorder, t *tool, locks, procs int, d time.Duration, scratch string) error {
	group, names := "Contend", []string{"contend"}
	if locks > 1 {
		group, names = "ContendSpread", nil
		for j := range locks {
			names = append(names, fmt.Sprintf("spread-%03d", j))
		}
	}
	var ps []*proc
	defer func() {
		for _, p := range ps {
			p.stop()
		}
	}()
	logs := make([]string, len(names))
	for j, name := range names {
		logs[j] = filepath.Join(scratch, t.name+"-"+name+".log")
		os.Remove(logs[j])
		lock := t.lock(name)
		for range procs {
			p, err := startProc(t.spec(lock))
			if err != nil {
				return err
			}
			ps = append(ps, p)
		}
	}
	for i, p := range ps {
		if err := p.send(fmt.Sprintf("loop %d %s w%d", d.Milliseconds(), logs[i/procs], i)); err != nil {
			return err
		}
	}
	var perProc []int64
	perLock := make([]int64, len(names))
	var elapsed time.Duration
	for i, p := range ps {
		got, err := p.recv()
		if err != nil {
			return err
		}
		perProc = append(perProc, got[0])
		perLock[i/procs] += got[0]
		elapsed = max(elapsed, time.Duration(got[1]))
	}
	var total int64
	for _, n := range perProc {
		total += n
	}
	overlaps := 0
	for j, log := range logs {
		n, err := checkLog(log, perLock[j])
		if err != nil {
			return err
		}
		overlaps += n
	}
	rec.sample(group, t.name, total, metric{float64(elapsed) / float64(max(total, 1)), "ns/op"},
		metric{float64(total) / elapsed.Seconds(), "cycles/s"}, metric{float64(overlaps), "overlaps"},
		metric{float64(slices.Min(perProc)), "min-cycles/proc"}, metric{float64(slices.Max(perProc)), "max-cycles/proc"})
	return nil
}

// checkLog replays a contention log and counts the acquires ("ID +") logged
// while another process was between its own "+" and "-". It fails if the log
// does not hold exactly the cycles the workers reported, or has a line it
// cannot read: a checker that loses lines could not be trusted to see
// overlaps.
func checkLog(name string, cycles int64) (overlaps int, err error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	holders := map[string]bool{}
	var acquires int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, ev, ok := strings.Cut(sc.Text(), " ")
		switch {
		case ok && ev == "+":
			if len(holders) > 0 {
				overlaps++
			}
			holders[id] = true
			acquires++
		case ok && ev == "-" && holders[id]:
			delete(holders, id)
		default:
			return overlaps, fmt.Errorf("%s: unexpected line %q", name, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return overlaps, err
	}
	if acquires != cycles {
		return overlaps, fmt.Errorf("%s: %d acquires logged, %d cycles reported", name, acquires, cycles)
	}
	return overlaps, nil
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
