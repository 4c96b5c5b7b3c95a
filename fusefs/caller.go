//go:build linux

package fusefs

import (
	"context"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
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
	pid, err := processOf(c.tid)
	if err != nil {
		return c, err
	}
	c.pid = pid
	c.command = commandLine(c.pid)
	return c, nil
}

// processOf returns the process of thread tid. Most callers are the main
// thread of their process, whose tid is the pid: pidfd_open accepts only
// such a thread (without PIDFD_THREAD), in two cheap system calls. For any
// other thread, or where pidfd_open fails (a kernel before 5.3), the Tgid
// of /proc/TID/status says, which the kernel renders at ten times the cost:
// it was the largest part of the mount's own work per open
// (docs/benchmarks.md).
func processOf(tid int) (int, error) {
	if fd, err := unix.PidfdOpen(tid, 0); err == nil {
		unix.Close(fd)
		return tid, nil
	}
	st, err := readThreadStatus(tid)
	return st.tgid, err
}
