package faultfs

import (
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// fault makes requests fail with errno, each with the given probability,
// left more times (-1: until cleared).
type fault struct {
	errno       syscall.Errno
	probability float64
	left        int
}

// LoseLinkReplies switches lost LINK replies on or off: while on, a LINK
// that succeeds answers EEXIST, and the link stays in place.
func (f *FS) LoseLinkReplies(on bool) { f.loseLinkReplies.Store(on) }

// Fail makes the next count requests of type op fail with errno; count -1
// fails every one until ClearFaults, count 0 clears op's fault. It replaces
// any earlier fault for op.
func (f *FS) Fail(op Op, errno syscall.Errno, count int) {
	f.setFault(op, fault{errno: errno, probability: 1, left: count})
}

// FailRandomly makes each request of type op fail with errno with the given
// probability (0 to 1), until ClearFaults. It replaces any earlier fault for op.
func (f *FS) FailRandomly(op Op, errno syscall.Errno, probability float64) {
	f.setFault(op, fault{errno: errno, probability: probability, left: -1})
}

func (f *FS) setFault(op Op, flt fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if flt.left == 0 {
		delete(f.faults, op)
		return
	}
	f.faults[op] = flt
}

// ClearFaults removes every fault set by Fail and FailRandomly.
func (f *FS) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.faults)
}

// SetLatency delays every request by d (0: no delay), as a network round
// trip would. The delay is not cut short by signals.
func (f *FS) SetLatency(d time.Duration) { f.latency.Store(int64(d)) }

// Hang starts a server outage: every request blocks until Resume. A request
// whose caller gets a signal meanwhile (the kernel sends FUSE_INTERRUPT)
// fails with EINTR, so killed callers die and do not wedge the unmount.
func (f *FS) Hang() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.outage == nil {
		f.outage = make(chan struct{})
	}
}

// Resume ends an outage started by Hang; blocked requests proceed.
func (f *FS) Resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.outage != nil {
		close(f.outage)
		f.outage = nil
	}
}

// enter is the gate every request passes before it is performed: it counts
// the request, waits out an outage and the latency, and returns the injected
// error, if any (fuse.OK to go on). cancel is closed when the kernel
// interrupts the request.
func (f *FS) enter(cancel <-chan struct{}, op Op) fuse.Status {
	f.mu.Lock()
	f.counts[op]++
	outage := f.outage
	f.mu.Unlock()

	if outage != nil {
		select {
		case <-outage:
		case <-cancel:
			return fuse.EINTR
		}
	}
	if d := time.Duration(f.latency.Load()); d > 0 {
		time.Sleep(d)
	}
	return fuse.Status(f.takeFault(op))
}

// takeFault returns the errno that this request of type op fails with, or 0.
func (f *FS) takeFault(op Op) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, ok := f.faults[op]
	if !ok || rand.Float64() >= flt.probability {
		return 0
	}
	if flt.left > 0 {
		flt.left--
		f.faults[op] = flt
		if flt.left == 0 {
			delete(f.faults, op)
		}
	}
	return flt.errno
}
