//go:build linux

package fusefs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// threadStatus is what /proc/TID/status says about one thread of a process:
// the process it belongs to and the state of its signals.
type threadStatus struct {
	tgid int // the thread group id: the process's pid
	ppid int // its parent process
	// pending holds the signals pending for the thread or its whole
	// process; the other sets are the thread's mask and the process's
	// dispositions.
	pending, blocked, ignored, caught sigset
}

// readThreadStatus reads /proc/TID/status. FUSE names the caller by its
// thread id, which /proc resolves whether or not it is a process id.
func readThreadStatus(tid int) (threadStatus, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/status")
	if err != nil {
		return threadStatus{}, err
	}
	var st threadStatus
	for line := range bytes.Lines(data) {
		key, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch string(key) {
		case "Tgid":
			st.tgid, err = strconv.Atoi(string(value))
		case "PPid":
			st.ppid, err = strconv.Atoi(string(value))
		case "SigPnd", "ShdPnd":
			var s sigset
			s, err = parseSigset(value)
			st.pending |= s
		case "SigBlk":
			st.blocked, err = parseSigset(value)
		case "SigIgn":
			st.ignored, err = parseSigset(value)
		case "SigCgt":
			st.caught, err = parseSigset(value)
		}
		if err != nil {
			return threadStatus{}, fmt.Errorf("/proc/%d/status: %s: %w", tid, key, err)
		}
	}
	if st.tgid == 0 {
		return threadStatus{}, fmt.Errorf("/proc/%d/status: no Tgid", tid)
	}
	return st, nil
}

// commandLine returns the command line of process pid with its arguments
// separated by spaces, as ps shows it, cut by nfslock.CutMessage. It is ""
// for a process without one (a kernel thread, a zombie).
func commandLine(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	data = bytes.TrimRight(data, "\x00")
	data = bytes.ReplaceAll(data, []byte{0}, []byte{' '})
	return nfslock.CutMessage(string(data))
}

// A sigset is a set of signals as /proc shows it: bit n-1 is signal n.
type sigset uint64

func parseSigset(hex []byte) (sigset, error) {
	v, err := strconv.ParseUint(string(hex), 16, 64)
	return sigset(v), err
}

func (s sigset) has(sig syscall.Signal) bool { return s&(1<<(sig-1)) != 0 }
