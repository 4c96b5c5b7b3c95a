//go:build linux

package nfslock

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// startTimeTolerance is how far a live process's start time may be from the
// record's: /proc gives it in clock ticks after a boot time in whole seconds.
const startTimeTolerance = time.Second

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; it is 100 on
// every Linux architecture.
const clockTicks = 100

var hostname = sync.OnceValues(os.Hostname)

// bootTime is read once: /proc/stat's btime does not change while the system runs.
var bootTime = sync.OnceValues(func() (time.Time, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for line := range bytes.Lines(data) {
		if v, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			secs, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("/proc/stat: btime: %w", err)
			}
			return time.Unix(secs, 0), nil
		}
	}
	return time.Time{}, errors.New("/proc/stat: no btime line")
})

// procStat is what the liveness check needs of /proc/PID/stat.
type procStat struct {
	start  time.Time
	state  byte // R, S, D, Z (zombie), X (being reaped), ...
	parent int  // the parent's pid: 1 for an orphan that init adopted
}

// canHold reports whether the process can still hold a lock. A running
// process can. One that has exited can no longer do anything, but while it
// is a zombie of the parent that started it, that parent may still act on
// its behalf before reaping it (nfslock hands its command's lock on to a
// keeper when the command exits and its background processes still run):
// it counts as alive until reaped, so no other process of the host judges
// the lock stale in between. A zombie adopted by init (parent 1), where an
// init that never reaps (a container without one) would keep it for ever,
// and a process being reaped, are dead.
func (st procStat) canHold() bool {
	switch st.state {
	case 'X':
		return false
	case 'Z':
		return st.parent > 1
	}
	return true
}

// readProcStat reads /proc/PID/stat.
func readProcStat(pid int) (procStat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name, in parentheses, may hold spaces and parentheses,
	// so fields are counted from the last ')'; state is field 3, ppid
	// field 4 and starttime field 22.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := bytes.Fields(data[i+1:])
	const stateField, parentField, starttimeField = 0, 1, 22 - 3
	if len(fields) <= starttimeField {
		return procStat{}, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ticks, err := strconv.ParseInt(string(fields[starttimeField]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat: starttime: %w", pid, err)
	}
	boot, err := bootTime()
	if err != nil {
		return procStat{}, err
	}
	parent, err := strconv.Atoi(string(fields[parentField]))
	if err != nil || len(fields[stateField]) != 1 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected state %q or ppid %q", pid, fields[stateField], fields[parentField])
	}
	return procStat{
		start:  boot.Add(time.Duration(ticks) * time.Second / clockTicks),
		state:  fields[stateField][0],
		parent: parent,
	}, nil
}

// processStart returns when process pid started.
func processStart(pid int) (time.Time, error) {
	st, err := readProcStat(pid)
	return st.start, err
}

// selfStart is this process's start time, read once: every acquire needs it.
var selfStart = sync.OnceValues(func() (time.Time, error) { return processStart(os.Getpid()) })

// recordFor returns the record naming process pid of this host as holder.
func recordFor(pid int, message string) (Record, error) {
	host, err := hostname()
	if err != nil {
		return Record{}, fmt.Errorf("nfslock: hostname: %w", err)
	}
	start, err := selfStart()
	if pid != os.Getpid() {
		start, err = processStart(pid)
	}
	if err != nil {
		return Record{}, fmt.Errorf("nfslock: holder process %d: %w", pid, err)
	}
	return Record{Host: host, Pid: pid, Message: message, StartTime: start.UTC().Truncate(time.Microsecond)}, nil
}

// isLocal reports whether the record's holder is on this host.
func isLocal(r Record) bool {
	host, err := hostname()
	return err == nil && r.Host == host
}

// alive reports whether the record's holder, a process of this host, still
// runs. EPERM from kill means a process exists that we may not signal: alive
// (Core counts it as dead and so can break a live lock). A zombie is alive
// only until its parent reaps it (see canHold). A pid now used by a
// process that started at another time is dead: the holder's pid was reused.
func alive(r Record) bool {
	if r.Pid <= 0 {
		return false // no process can hold it; kill(0) would mean our group
	}
	if err := syscall.Kill(r.Pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	st, err := readProcStat(r.Pid)
	if err != nil {
		// Gone between kill and the read; any other failure leaves the
		// holder's life unknown, and an unknown holder keeps its lock.
		return !errors.Is(err, os.ErrNotExist)
	}
	if !st.canHold() {
		return false
	}
	if r.StartTime.IsZero() {
		return true
	}
	d := st.start.Sub(r.StartTime)
	return -startTimeTolerance <= d && d <= startTimeTolerance
}
