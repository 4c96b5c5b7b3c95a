//go:build linux

package fusefs

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// createLock is openLock for CREATE, an open with O_CREAT of a name that
// LOOKUP found free. The kernel sends CREATE with the directory locked:
// waiting there would stall every create, lookup and listing in the
// directory for as long as the lock is held. So a lock taken since that
// LOOKUP is answered with ESTALE, on which the kernel looks the name up
// once more (it now exists) and opens it with OPEN, which waits outside
// the directory lock. Only a retry that finds the name free and the lock
// taken once again waits in CREATE: a second ESTALE would reach the caller.
func (fsys *filesystem) createLock(ctx context.Context, path string, flags uint32) (*holdHandle, syscall.Errno) {
	if flags&(syscall.O_EXCL|syscall.O_NONBLOCK) != 0 {
		return fsys.openLock(ctx, path, flags)
	}
	h, errno := fsys.openLock(ctx, path, flags|syscall.O_NONBLOCK)
	if errno != syscall.EAGAIN {
		return h, errno
	}
	if fsys.creates.isRetry(ctx, path) {
		return fsys.openLock(ctx, path, flags)
	}
	fsys.log.WithField("path", path).Debug("lock taken since the lookup: create answered ESTALE, to be retried as an open")
	return nil, syscall.ESTALE
}

// staleCreates remembers the creates answered with ESTALE, by calling
// thread and path, for as long as the kernel takes to retry them.
type staleCreates struct {
	mu sync.Mutex
	m  map[staleCreate]time.Time
}

type staleCreate struct {
	tid  uint32
	path string
}

// retryWindow bounds the time from an ESTALE to the kernel's retry.
const retryWindow = time.Second

// isRetry reports whether the create of path by ctx's caller retries one
// answered with ESTALE; if not, it remembers this one.
func (s *staleCreates) isRetry(ctx context.Context, path string) bool {
	c, _ := fuse.FromContext(ctx)
	key := staleCreate{path: path}
	if c != nil {
		key.tid = c.Pid
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.m[key]; ok && now.Sub(at) < retryWindow {
		delete(s.m, key)
		return true
	}
	for k, at := range s.m {
		if now.Sub(at) >= retryWindow {
			delete(s.m, k) // the caller did not retry: it died
		}
	}
	if s.m == nil {
		s.m = make(map[staleCreate]time.Time)
	}
	s.m[key] = now
	return false
}
