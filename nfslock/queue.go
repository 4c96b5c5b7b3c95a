//go:build linux

package nfslock

import "sync"

// waiters queues the blocking acquirers of this process per lock, in
// arrival order. Only the head of a queue polls the filesystem; a release in
// this process wakes the head at once, and a head that leaves wakes the next.
var waiters = waitQueues{m: make(map[string][]*waiter), seen: make(map[string]*HeldError)}

type waitQueues struct {
	mu sync.Mutex
	m  map[string][]*waiter
	// seen is the holder the head of each queue last found, so that the
	// waiters behind it, which never look, can name it when they give up.
	seen map[string]*HeldError
}

// A waiter is one blocked Acquire. wake has room for one signal, so a
// signal sent while the waiter is busy is not lost.
type waiter struct {
	wake chan struct{}
}

func (w *waiter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// join queues a new waiter for key and says how many are ahead of it.
func (q *waitQueues) join(key string) (w *waiter, ahead int) {
	w = &waiter{wake: make(chan struct{}, 1)}
	q.mu.Lock()
	defer q.mu.Unlock()
	ahead = len(q.m[key])
	q.m[key] = append(q.m[key], w)
	return w, ahead
}

func (q *waitQueues) leave(key string, w *waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	queue := q.m[key]
	for i, x := range queue {
		if x == w {
			queue = append(queue[:i:i], queue[i+1:]...)
			break
		}
	}
	if len(queue) == 0 {
		delete(q.m, key)
		delete(q.seen, key)
		return
	}
	q.m[key] = queue
	queue[0].signal()
}

func (q *waitQueues) isHead(key string, w *waiter) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	queue := q.m[key]
	return len(queue) > 0 && queue[0] == w
}

func (q *waitQueues) wakeHead(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if queue := q.m[key]; len(queue) > 0 {
		queue[0].signal()
	}
}

// saw records what the head of key's queue last found: the holder, or nil
// after an attempt that failed otherwise.
func (q *waitQueues) saw(key string, held *HeldError) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seen[key] = held
}

// lastSeen returns the holder the head of key's queue last found, if any.
func (q *waitQueues) lastSeen(key string) *HeldError {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.seen[key]
}

// waiting reports how many Acquire calls of this process are waiting for
// the lock on path, for tests that must know a waiter has taken its place
// in the queue.
func waiting(path string) int {
	path, err := NormalizePath(path)
	if err != nil {
		return 0
	}
	waiters.mu.Lock()
	defer waiters.mu.Unlock()
	return len(waiters.m[path])
}
