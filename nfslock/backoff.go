//go:build linux

package nfslock

import (
	"math/rand/v2"
	"time"
)

// Polling a lock held on another host: the first polls come quickly, so
// that a short hold costs a short wait, and the interval then grows to
// maxPoll, so that a long wait does not load the server. Each poll is an
// open of the lock's directory and an lstat of P.nfs_lock (about one NFS
// round trip, see revalidateDir), where a Core attempt costs
// several; a full attempt is made only when the lock changed or its local
// holder died. maxPoll stays well under Core's 300 ms bound.
const (
	minPoll = time.Millisecond
	maxPoll = 100 * time.Millisecond
)

// backoff yields the randomized intervals between polls: uniform in
// [d/2, d], with d doubling from minPoll to maxPoll. The randomness keeps
// waiters on many hosts from polling in step.
type backoff struct{ d time.Duration }

func (b *backoff) next() time.Duration {
	b.d = min(max(2*b.d, minPoll), maxPoll)
	return b.d/2 + rand.N(b.d/2+1)
}
