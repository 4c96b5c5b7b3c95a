//go:build linux

package nfslock

import (
	"math/rand/v2"
	"time"
)

// Polling a lock held on another host: the first polls come quickly, so
// that a short hold costs a short wait, and the interval then grows to
// maxPoll, so that a long wait does not load the server. Each poll is an
// open of the lock's directory and an lstat of P.nfs_lock: one NFS request
// (the directory's GETATTR, see revalidateDir) while the lock is unchanged,
// where a Core attempt costs five or six; a full attempt is made only when
// the lock changed or its local holder died. With intervals uniform in
// [maxPoll/2, maxPoll], a settled waiter polls 1/(0.75 maxPoll) times a
// second: 8.9 at 150 ms, under the 10 requests per second per waiter that
// docs/design.md ("The poll interval") sets, with room for the lock file's
// own GETATTR when its cached attributes expire. The median wait from a
// release to the poll that sees it is then half the mean interval, 56 ms,
// and no policy of one request per poll does better at that rate. maxPoll
// stays well under Core's 300 ms bound.
const (
	minPoll = time.Millisecond
	maxPoll = 150 * time.Millisecond
)

// backoff yields the randomized intervals between polls: uniform in
// [d/2, d], with d doubling from minPoll to maxPoll. The randomness keeps
// waiters on many hosts from polling in step.
type backoff struct{ d time.Duration }

func (b *backoff) next() time.Duration {
	b.d = min(max(2*b.d, minPoll), maxPoll)
	return b.d/2 + rand.N(b.d/2+1)
}
