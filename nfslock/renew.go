//go:build linux

package nfslock

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// A heldLease is the lease of a Lock taken in a lease directory: its
// renewal schedule and, once lost, why. Its mutex is never held during I/O,
// so that the renewer can always judge a lease in time, even while a call
// on the Lock waits for a hung server.
type heldLease struct {
	l         *Lock
	dur       time.Duration
	token     uint64
	heldSince time.Time     // server time of the acquisition
	lost      chan struct{} // closed when lost

	mu sync.Mutex
	// lastOK is when (by the local monotonic clock) the last renewal that
	// succeeded was sent, or the acquisition began: the server set the
	// lock file's mtime after that, so the lease lasts at least until
	// lastOK + dur by the server's clock.
	lastOK   time.Time
	nextDue  time.Time
	inFlight bool
	ino      uint64 // P.nfs_lock's inode: the renewal checks it is still ours
	data     []byte // the record in it
	pending  uint64 // a replacement's inode, while replaceRecord renames it in
	err      error  // why the lease ended: lost (ErrLost) or released (ErrNotLocked)
}

// deadline is when the holder gives the lease up unless renewed: a margin
// before the server's clock can show it expired. Called with hl.mu held.
func (hl *heldLease) deadline() time.Time {
	return hl.lastOK.Add(hl.dur - leaseMargin(hl.dur))
}

// check returns nil while the lease holds, and otherwise the error that
// ended it. A lease past its deadline is lost here and now, whether or not
// the renewer has run: a process that was stopped for longer than its
// lease learns it on its first call after it continues.
func (hl *heldLease) check() error {
	hl.mu.Lock()
	if hl.err == nil && !now().Before(hl.deadline()) {
		hl.mu.Unlock()
		hl.lose(fmt.Errorf("not renewed for %v of its %v lease: %w", now().Sub(hl.lastOK).Round(time.Millisecond), hl.dur, ErrLost))
		hl.mu.Lock()
	}
	defer hl.mu.Unlock()
	return hl.err
}

// lose ends the lease as lost, once: the Lock's Lost channel closes, the
// process no longer counts the lock as its own (its next waiter may try to
// take it), and the log says so. Nothing is removed from the disk: another
// holder may own those names now.
func (hl *heldLease) lose(reason error) {
	hl.mu.Lock()
	if hl.err != nil {
		hl.mu.Unlock()
		return
	}
	hl.err = fmt.Errorf("nfslock: %s: lease lost: %w", hl.l.path, reason)
	close(hl.lost)
	lostLeases.Store(hl.l.path, lostLease{hl.ino, hl.data})
	hl.mu.Unlock()
	renewals.remove(hl)
	heldLocks.remove(hl.l)
	waiters.wakeHead(hl.l.path)
	hl.l.log.WithFields(logrus.Fields{"path": hl.l.path, "token": hl.token}).WithError(reason).Warn("lock lost")
}

// end stops renewing a lease whose lock was released or removed.
func (hl *heldLease) end() {
	hl.mu.Lock()
	if hl.err == nil {
		hl.err = fmt.Errorf("nfslock: %s: already released: %w", hl.l.path, ErrNotLocked)
	}
	hl.mu.Unlock()
	renewals.remove(hl)
}

// replacing and replaced bracket replaceRecord's rename of a new lock file
// of inode ino over the old one, so that a renewal meanwhile accepts both.
func (hl *heldLease) replacing(ino uint64) {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	hl.pending = ino
}

func (hl *heldLease) replaced(ino uint64, data []byte) {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	hl.ino, hl.data, hl.pending = ino, data, 0
}

func (hl *heldLease) owns(ino uint64) bool {
	hl.mu.Lock()
	defer hl.mu.Unlock()
	return ino == hl.ino || ino != 0 && ino == hl.pending
}

// renew sets the lock file's times to the server's time, after checking
// that the name is still our file, and records the outcome.
func (hl *heldLease) renew() {
	sent := now()
	lostReason, err := hl.touch()
	hl.mu.Lock()
	hl.inFlight = false
	if hl.err != nil {
		hl.mu.Unlock()
		return
	}
	switch {
	case lostReason != nil:
	case err != nil:
		// Not an answer (EIO, a timeout): try again soon; the deadline
		// decides when the lease is lost.
		hl.nextDue = now().Add(hl.dur / 12)
	case now().After(hl.deadline()):
		lostReason = fmt.Errorf("a renewal was answered only after the holder's deadline: %w", ErrLost)
	default:
		hl.lastOK, hl.nextDue = sent, sent.Add(hl.dur/3)
	}
	hl.mu.Unlock()
	if lostReason != nil {
		hl.lose(lostReason)
	} else if err != nil {
		hl.l.log.WithError(err).WithField("path", hl.l.path).Warn("renewing the lease failed; retrying")
	}
}

// touch is one renewal's I/O: it returns why the lease is lost, or a
// failure to retry.
func (hl *heldLease) touch() (lost, retry error) {
	f, fi, err := openLockFile(hl.l.path)
	switch {
	case errors.Is(err, ErrNotLocked):
		return fmt.Errorf("the lock file was removed by someone else: %w", ErrLost), nil
	case errors.Is(err, syscall.ELOOP), errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("the lock file was replaced: %v: %w", err, ErrLost), nil
	case err != nil:
		return nil, err
	}
	defer f.Close()
	if !hl.owns(pathIno(fi)) {
		return fmt.Errorf("the lock was broken and taken by someone else: %w", ErrLost), nil
	}
	// By descriptor: the file we checked is the one touched, even if the
	// name changes meanwhile. A file removed on another host is stale.
	if err := touchNow(f); errors.Is(err, syscall.ESTALE) || errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("the lock file was removed by someone else: %v: %w", err, ErrLost), nil
	} else if err != nil {
		return nil, err
	}
	return nil, nil
}

// startLease makes the lock just taken at l a lease of dur: it takes the
// next fencing token and declares the lease in P's token file, and hands
// the lease to the renewer. start is when the acquisition began (before the
// attempt file was written, whose server mtime, heldSince, starts the
// lease). If it fails, the lock is given back.
func (l *Lock) startLease(dur time.Duration, start, heldSince time.Time) error {
	hl := &heldLease{l: l, dur: dur, heldSince: heldSince, lost: make(chan struct{}),
		lastOK: start, nextDue: start.Add(dur / 3), ino: l.ino, data: l.data}
	prev, err := readTokenFile(l.path)
	if err == nil {
		hl.token = prev.token + 1
		err = writeTokenFile(l.path, tokenInfo{token: hl.token, ino: l.ino, heldSince: heldSince, lease: dur})
	}
	if err == nil {
		err = hl.check()
	}
	if err != nil {
		hl.mu.Lock()
		inTime := now().Before(hl.deadline())
		hl.mu.Unlock()
		if inTime {
			l.giveBack()
		}
		return err
	}
	l.lease = hl // activate hands it to the renewer
	lostLeases.Delete(l.path)
	return nil
}

// giveBack removes a lock that tryAcquire took but cannot hand out.
func (l *Lock) giveBack() {
	fl, err := l.openOwned()
	if err != nil {
		return
	}
	defer fl.Close()
	fl.closeFile()
	l.removeFiles()
}

// leaseErr is the error of a call on a Lock whose lease has ended.
func (l *Lock) leaseErr() error {
	if l.lease == nil {
		return nil
	}
	return l.lease.check()
}

// Token returns the lock's fencing token: larger than every token handed
// out before for this lock, by any host, so that a storage system that
// remembers the largest it has seen can refuse a holder that lost the lock.
// It is 0 outside a lease directory (see LeaseFile).
func (l *Lock) Token() uint64 {
	if l.lease == nil {
		return 0
	}
	return l.lease.token
}

// Lost returns a channel that is closed when the lock's lease is lost (see
// ErrLost). It is nil for a lock outside a lease directory, which only an
// operator's Break can take away (its Unlock then reports it).
func (l *Lock) Lost() <-chan struct{} {
	if l.lease == nil {
		return nil
	}
	return l.lease.lost
}

// Err returns nil while the lock is held, an error matching ErrLost once
// its lease is lost, and one matching ErrNotLocked once it was released.
// It judges the lease by the local clock at the call, so a holder that
// calls it before each action in its critical section never acts past its
// lease, even after it was stopped (SIGSTOP, a frozen virtual machine) for
// longer than the lease.
func (l *Lock) Err() error {
	if l.lease != nil {
		return l.lease.check()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("nfslock: %s: already released: %w", l.path, ErrNotLocked)
	}
	return nil
}

// LeaseDuration returns the lease the lock was taken with, 0 outside a
// lease directory. Once the lock is lost, others may take it a sixth of
// that after Lost is closed: the margin its holder keeps.
func (l *Lock) LeaseDuration() time.Duration {
	if l.lease == nil {
		return 0
	}
	return l.lease.dur
}

// renewals renews every lease of this process. One scheduling goroutine,
// with one timer, runs while there is a lease to keep; the renewals that
// fall due close together go out as one batch, in one goroutine, and at
// most one batch is in flight. The scheduler itself does no I/O, so it
// judges deadlines on time even when the server hangs a batch.
var renewals = renewer{leases: make(map[*heldLease]struct{}), wake: make(chan struct{}, 1)}

type renewer struct {
	mu       sync.Mutex
	leases   map[*heldLease]struct{}
	wake     chan struct{}
	running  bool // the scheduler runs
	batching bool // a batch is in flight
}

func (r *renewer) add(hl *heldLease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leases[hl] = struct{}{}
	if !r.running {
		r.running = true
		go r.schedule()
		return
	}
	r.signal()
}

func (r *renewer) remove(hl *heldLease) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.leases, hl)
	r.signal()
}

func (r *renewer) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// schedule is the scheduling goroutine. It ends when no lease is left.
func (r *renewer) schedule() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		t := now()
		next := t.Add(time.Hour)
		var due, expired []*heldLease
		r.mu.Lock()
		if len(r.leases) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		for hl := range r.leases {
			hl.mu.Lock()
			deadline, nextDue := hl.deadline(), hl.nextDue
			switch {
			case hl.err != nil:
				delete(r.leases, hl) // ended before it was handed over
			case !t.Before(deadline):
				expired = append(expired, hl)
			case hl.inFlight:
			case nextDue.Sub(t) <= hl.dur/12:
				// Due, or nearly: renewing a little early lets leases
				// taken at different times share batches. While a batch
				// is in flight, its end wakes the scheduler.
				if !r.batching {
					hl.inFlight = true
					due = append(due, hl)
				}
			default:
				next = earliest(next, nextDue.Add(-hl.dur/12))
			}
			next = earliest(next, deadline)
			hl.mu.Unlock()
		}
		if len(due) > 0 {
			r.batching = true
			go r.renewBatch(due)
		}
		r.mu.Unlock()
		for _, hl := range expired {
			hl.check() // loses it
		}
		timer.Reset(max(next.Sub(t), 0))
		select {
		case <-timer.C:
		case <-r.wake:
		}
	}
}

func (r *renewer) renewBatch(batch []*heldLease) {
	for _, hl := range batch {
		hl.renew()
	}
	r.mu.Lock()
	r.batching = false
	r.signal()
	r.mu.Unlock()
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// redeclare rewrites the token file for the lock file of inode ino that
// replaceRecord put in place, so that readers still find the holder's
// token and acquisition time. Best effort: until it lands, readers show the
// lock without them.
func (hl *heldLease) redeclare(ino uint64) {
	writeTokenFile(hl.l.path, tokenInfo{token: hl.token, ino: ino, heldSince: hl.heldSince, lease: hl.dur})
}

// lostLeases remembers, per path, the lock file of the last lease this
// process lost there: that file still names this process, but nobody renews
// it, so it expires like another holder's, where a file naming this
// process is otherwise held for it by another (see tryAcquire).
var lostLeases sync.Map // path → lostLease

type lostLease struct {
	ino  uint64
	data []byte
}

// lostHere reports whether the lock file of inode ino holding raw is a
// lease this process lost.
func lostHere(p string, ino uint64, raw []byte) bool {
	v, ok := lostLeases.Load(p)
	return ok && v.(lostLease).ino == ino && bytes.Equal(v.(lostLease).data, raw)
}
