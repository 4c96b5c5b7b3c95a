//go:build linux

package fusefs

import (
	"context"
	"sync"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// POSIX locks (fcntl F_SETLK, lockf) belong to a process and go when it
// closes any descriptor of the file. The kernel's FLUSH, sent by every
// close(2), names the closing process's lock owner, but go-fuse's fs layer
// does not pass it on to FileFlusher. flushOwners is the one place that
// reaches into the raw layer for it: it wraps the node filesystem, notes
// each FLUSH's lock owner under the request's cancel channel (which the fs
// layer hands on unchanged in the *fuse.Context it gives Flush) for the
// duration of the call, and flushOwner looks it up.
//
// Limits: it relies on go-fuse passing each request's own cancel channel
// into the handler's context, as v2 does; the integration tests of POSIX
// locks released by a close would fail if that changed.
type flushOwners struct {
	fuse.RawFileSystem
	owners sync.Map // <-chan struct{} (a FLUSH in flight) → uint64 (its lock owner)
}

func (r *flushOwners) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	r.owners.Store(cancel, in.LockOwner)
	defer r.owners.Delete(cancel)
	return r.RawFileSystem.Flush(cancel, in)
}

// flushOwner returns the lock owner of the FLUSH that ctx belongs to.
func (r *flushOwners) flushOwner(ctx context.Context) (uint64, bool) {
	fc, ok := ctx.(*fuse.Context)
	if !ok || r == nil {
		return 0, false
	}
	owner, ok := r.owners.Load(fc.Cancel)
	if !ok {
		return 0, false
	}
	return owner.(uint64), true
}
