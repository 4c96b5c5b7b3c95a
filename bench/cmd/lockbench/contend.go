package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"
)

// Figure 3: contended throughput. Several processes take and release one
// lock as fast as they can for a while; each appends "ID +" to a shared log
// after acquiring and "ID -" before releasing, and checkLog proves from the
// log alone that no two held the lock at once.

// A throughput is the outcome of one contention run.
type throughput struct {
	perProc    []int64 // cycles each process completed
	elapsed    time.Duration
	violations int // acquires logged while another process held the lock
	logErr     error
}

func (r throughput) total() int64 {
	var n int64
	for _, c := range r.perProc {
		n += c
	}
	return n
}

func (r throughput) perSecond() float64 { return float64(r.total()) / r.elapsed.Seconds() }

func contention(t *tool, procs int, d time.Duration) (throughput, error) {
	lock, err := t.lockPath("contention")
	if err != nil {
		return throughput{}, err
	}
	log, err := t.notesFile("contention.log")
	if err != nil {
		return throughput{}, err
	}
	os.Remove(log)
	var ps []*proc
	defer func() {
		for _, p := range ps {
			p.stop()
		}
	}()
	for range procs {
		p, err := startProc(t.spec(lock))
		if err != nil {
			return throughput{}, err
		}
		ps = append(ps, p)
	}
	for i, p := range ps {
		if err := p.send(fmt.Sprintf("loop %d %s w%d", d.Milliseconds(), log, i)); err != nil {
			return throughput{}, err
		}
	}
	var r throughput
	for _, p := range ps {
		got, err := p.recv()
		if err != nil {
			return r, err
		}
		r.perProc = append(r.perProc, got[0])
		r.elapsed = max(r.elapsed, time.Duration(got[1]))
	}
	r.violations, r.logErr = checkLog(log, r.total())
	return r, nil
}

// checkLog replays a contention log and counts the acquires ("ID +") logged
// while another process was between its own "+" and "-". It fails if the log
// does not hold exactly the cycles the workers reported, or has a line it
// cannot read: a checker that loses lines could not be trusted to see
// overlaps.
func checkLog(name string, cycles int64) (violations int, err error) {
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
				violations++
			}
			holders[id] = true
			acquires++
		case ok && ev == "-" && holders[id]:
			delete(holders, id)
		default:
			return violations, fmt.Errorf("%s: unexpected line %q", name, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return violations, err
	}
	if acquires != cycles {
		return violations, fmt.Errorf("%s: %d acquires logged, %d cycles reported", name, acquires, cycles)
	}
	return violations, nil
}
