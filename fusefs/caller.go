//go:build linux

package fusefs

import (
	"context"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// A caller is the process on whose behalf an open takes a lock.
type caller struct {
	tid     int    // the thread in the open call, as FUSE names it; 0 if unknown
	pid     int    // its process, which the record names; 0 if unknown
	command string // its command line: the record's message
}

// callerOf identifies the process that made the request ctx belongs to.
// FUSE gives the calling thread's id (0 for a process outside the daemon's
// pid namespace); the record must name its process, the thread group.
func callerOf(ctx context.Context) (caller, error) {
	fc, ok := fuse.FromContext(ctx)
	if !ok || fc.Pid == 0 {
		return caller{}, nil
	}
	c := caller{tid: int(fc.Pid)}
	st, err := readThreadStatus(c.tid)
	if err != nil {
		return c, err
	}
	c.pid = st.tgid
	c.command = commandLine(c.pid)
	return c, nil
}
