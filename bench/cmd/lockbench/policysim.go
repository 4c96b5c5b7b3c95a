package main

import (
	"math/rand/v2"
	"strings"
	"time"
)

// A simulation of waiting policies, to choose our poll setting: far more
// holds than a real run can afford, each policy facing the same ones. A
// waiter starts when the lock is taken, tries at once, and then retries at
// the policy's intervals; it acquires at the first retry at or after the
// release. Its requests are costPerRetry per retry plus a fixed cost per
// handoff (the first and the successful attempt, and for us the sweep of
// old attempt files), which is fitted to the measured run of the same
// policy, so that the simulation reproduces what was measured.

// A policy is a way to wait between retries.
type policy struct {
	name         string
	costPerRetry float64 // requests per retry (our poll: one lstat; Core: a whole attempt)
	next         func(rng *rand.Rand, retry int) time.Duration
}

// ourPolicy is nfslock's poll: uniform in [d/2, d], d doubling from
// minPoll to maxPoll (nfslock/backoff.go).
func ourPolicy(name string, minPoll, maxPoll time.Duration) policy {
	return policy{name: name, costPerRetry: 1, next: func(rng *rand.Rand, retry int) time.Duration {
		d := maxPoll
		if retry < 40 {
			d = min(minPoll<<retry, maxPoll)
		}
		return d/2 + time.Duration(rng.Int64N(int64(d/2)+1))
	}}
}

// corePolicy is Core's: a uniformly random wait of up to 300 ms, then a
// whole attempt (coreSim's requests per failed attempt).
func corePolicy(costPerAttempt float64) policy {
	return policy{name: "Core", costPerRetry: costPerAttempt, next: func(rng *rand.Rand, retry int) time.Duration {
		return time.Duration(rng.Int64N(int64(coreRetryMax)))
	}}
}

// A simResult is a policy's simulated latency and load.
type simResult struct {
	median, p90       time.Duration
	retriesPerHandoff float64
	meanWait          time.Duration
}

// requestsPerSecond is the load per waiter given the fixed requests per
// handoff.
func (r simResult) requestsPerSecond(p policy, fixed float64) float64 {
	return (r.retriesPerHandoff*p.costPerRetry + fixed) / r.meanWait.Seconds()
}

func simulate(p policy, holds []time.Duration, seed uint64) simResult {
	rng := rand.New(rand.NewPCG(seed, 3))
	lat := make([]time.Duration, len(holds))
	var retries int
	var wait time.Duration
	for i, h := range holds {
		t := time.Duration(0)
		for retry := 0; t < h; retry++ {
			t += p.next(rng, retry)
			retries++
		}
		lat[i] = t - h
		wait += t
	}
	return simResult{
		median:            median(lat),
		p90:               quantile(lat, 0.9),
		retriesPerHandoff: float64(retries) / float64(len(holds)),
		meanWait:          wait / time.Duration(len(holds)),
	}
}

// fittedFixedCost returns the requests per handoff that the simulation's
// retries do not explain, from a measured run of the same policy.
func fittedFixedCost(p policy, measuredPerHandoff float64, holds []time.Duration, seed uint64) float64 {
	return measuredPerHandoff - simulate(p, holds, seed).retriesPerHandoff*p.costPerRetry
}

// writePolicySim puts other poll settings beside the measured two, by
// simulation fitted to the measurement, and recommends the fastest that
// meets the target even if Core's attempts cost fewer requests than
// coreSim's (6, the read of the lock file counted as one request).
func (r *results) writePolicySim(w writer, ours, core policyRun) {
	if len(ours.handoffs) == 0 || len(core.handoffs) == 0 {
		return
	}
	holds := crossHostHolds(20000, 7)
	const simSeed = 13
	coreP, coreLeanP := corePolicy(8), corePolicy(6)
	coreFixed := fittedFixedCost(coreP, core.requests.total(), r.crossHolds, simSeed)
	coreSim := simulate(coreP, holds, simSeed)
	coreRate := coreSim.requestsPerSecond(coreP, coreFixed)
	coreLeanRate := coreSim.requestsPerSecond(coreLeanP, coreFixed*6/8)
	current := ourPolicy("1 ms → 100 ms (current)", time.Millisecond, 100*time.Millisecond)
	oursFixed := fittedFixedCost(current, ours.requests.total(), r.crossHolds, simSeed)
	w("Other settings, simulated: 20,000 holds from the same distribution; a policy retries at its intervals and acquires at the first retry after the release (the requests' own time left out). ")
	w("A retry costs 1 request for us (an lstat) and 8 for Core (a whole attempt, as coreSim makes it), plus a fixed cost per handoff fitted to the measured run (ours %.1f, Core %.1f requests). ", oursFixed, coreFixed)
	w("Core's attempt might cost fewer requests than coreSim's: 6 if reading the lock file counts as one request (create, write, close, link, unlink, read); the last column checks against that leaner Core, %.1f requests/s. ", coreLeanRate)
	w("The target: at most half of Core's median latency (%s), at no more requests per second (%.1f).\n\n", dur(coreSim.median/2), coreRate)
	w("| policy | median | p90 | requests/s per waiter | meets the target | and against a leaner Core |\n|---|---:|---:|---:|---|---|\n")
	w("| Core: uniform in [0, 300 ms] | %s | %s | %.1f | | |\n", dur(coreSim.median), dur(coreSim.p90), coreRate)
	var best, now struct {
		name string
		res  simResult
		rate float64
	}
	for _, maxPoll := range []time.Duration{25, 50, 75, 100, 150, 200} {
		maxPoll *= time.Millisecond
		p := ourPolicy("1 ms → "+dur(maxPoll), time.Millisecond, maxPoll)
		if maxPoll == 100*time.Millisecond {
			p = current
		}
		res := simulate(p, holds, simSeed)
		rate := res.requestsPerSecond(p, oursFixed)
		meets := res.median <= coreSim.median/2 && rate <= coreRate
		robust := meets && rate <= coreLeanRate
		w("| ours, %s | %s | %s | %.1f | %s | %s |\n", p.name, dur(res.median), dur(res.p90), rate, yesNo(meets), yesNo(robust))
		if robust && (best.name == "" || res.median < best.res.median) {
			best.name, best.res, best.rate = p.name, res, rate
		}
		if p.name == current.name {
			now.name, now.res, now.rate = p.name, res, rate
		}
	}
	w("\n")
	switch best.name {
	case "":
		w("No setting simulated meets the target against the leaner Core.\n\n")
	case current.name:
		w("**The current setting is the fastest of these that meets the target against the leaner Core too**; nothing to change.\n\n")
	default:
		w("**Recommendation:** `maxPoll = %s` in nfslock/backoff.go (minPoll and the doubling unchanged): simulated median %s and p90 %s at %.1f requests/s per waiter, against %s, %s and %.1f for the current setting; Core: %s, %s, %.1f (%.1f if leaner). ",
			strings.TrimPrefix(best.name, "1 ms → "), dur(best.res.median), dur(best.res.p90), best.rate,
			dur(now.res.median), dur(now.res.p90), now.rate, dur(coreSim.median), dur(coreSim.p90), coreRate, coreLeanRate)
		w("It is the fastest setting simulated that meets the target with a margin: half Core's latency or less, and fewer requests than even the leaner Core makes.\n\n")
	}
}
