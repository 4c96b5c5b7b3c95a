package main

import (
	"fmt"
	"time"
)

// Figure 1: uncontended acquire+release. A worker times cycles inside one
// process: library calls for in-process tools, whole command invocations for
// commands, whose process starts are then subtracted: a baseline worker
// times starting `true` in runs interleaved with the tool's, so that both
// see the same load.

// runsPerFigure1 is how many timed runs make one row (median and spread).
const runsPerFigure1 = 7

// A timing is figure 1 for one tool: the time per cycle of each run, and
// for commands the same less the process starts of the interleaved
// baseline run.
type timing struct {
	gross, net []time.Duration
}

// cycleTimes times runsPerFigure1 runs of about runTime each. With a
// baseline tool (one process start per cycle), commands also get net times.
func cycleTimes(t, baseline *tool, runTime time.Duration) (timing, error) {
	var tm timing
	run, err := cycleRunner(t, runTime)
	if err != nil {
		return tm, err
	}
	defer run.stop()
	var base *runner
	if t.kind == command && baseline != nil {
		if base, err = cycleRunner(baseline, runTime); err != nil {
			return tm, err
		}
		defer base.stop()
	}
	for range runsPerFigure1 {
		var start time.Duration
		if base != nil {
			if start, err = base.run(); err != nil {
				return tm, err
			}
		}
		d, err := run.run()
		if err != nil {
			return tm, err
		}
		tm.gross = append(tm.gross, d)
		if base != nil {
			tm.net = append(tm.net, d-time.Duration(t.starts)*start)
		}
	}
	return tm, nil
}

// A runner is a worker sized to time n cycles per run.
type runner struct {
	p *proc
	n int64
}

// cycleRunner starts a worker for t, warms it up (imports, caches, the
// first lookup) and sizes its runs to about runTime.
func cycleRunner(t *tool, runTime time.Duration) (*runner, error) {
	lock, err := t.lockPath("uncontended")
	if err != nil {
		return nil, err
	}
	p, err := startProc(t.spec(lock))
	if err != nil {
		return nil, err
	}
	const warm = 5
	r, err := p.call(fmt.Sprint("cycles ", warm))
	if err != nil {
		p.stop()
		return nil, err
	}
	n := int64(runTime) * warm / max(r[0], 1)
	return &runner{p: p, n: min(max(n, 5), 100000)}, nil
}

// run returns the time per cycle of one run.
func (r *runner) run() (time.Duration, error) {
	got, err := r.p.call(fmt.Sprint("cycles ", r.n))
	if err != nil {
		return 0, err
	}
	return time.Duration(got[0] / r.n), nil
}

func (r *runner) stop() { r.p.stop() }
