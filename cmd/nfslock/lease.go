//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nfslockfs/nfslockfs/nfslock"
)

// In a lease directory (see nfslock.LeaseFile) nfslock renews the lock while
// COMMAND runs. If the lease is lost, COMMAND must stop before another host
// can take the lock: nfslock sends SIGTERM to COMMAND's process group at
// once, SIGKILL when the holder's margin (a sixth of the lease) has passed,
// and exits with exitLost once COMMAND has ended.

// commandAttr returns COMMAND's process attributes for the lock path, and
// whether COMMAND gets a process group of its own. Outside lease
// directories COMMAND is an ordinary child in nfslock's group, as with
// flock(1). In a lease directory:
//
//   - COMMAND gets a process group of its own, so that a lost lease reaches
//     everything it started, unless nfslock's stdin is a terminal, where
//     COMMAND must stay in the terminal's foreground group for job control
//     (then the signals go to COMMAND alone);
//   - COMMAND gets SIGTERM if nfslock dies (kill -9): nobody renews the
//     lease any more, so other hosts will take the lock a lease later.
func commandAttr(path string) (attr *syscall.SysProcAttr, group bool) {
	dur, err := nfslock.DirLease(path)
	if err != nil || dur == 0 {
		return nil, false
	}
	_, err = unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS)
	group = err != nil
	return &syscall.SysProcAttr{Setpgid: group, Pdeathsig: syscall.SIGTERM}, group
}

// commandEnv is what COMMAND finds in its environment besides nfslock's:
// NFSLOCK_PATH, the lock's path, and in a lease directory NFSLOCK_TOKEN,
// its fencing token, as etcdctl lock passes ETCD_LOCK_REV.
func commandEnv(lock heldLock) []string {
	env := []string{"NFSLOCK_PATH=" + lock.Path()}
	if t := lock.Token(); t > 0 {
		env = append(env, "NFSLOCK_TOKEN="+strconv.FormatUint(t, 10))
	}
	return env
}

// lossKiller stops COMMAND after the loss of its lock's lease.
type lossKiller struct {
	lock  heldLock
	pid   int
	group bool
	kill  *time.Timer // SIGKILL, once SIGTERM was sent
}

// signal sends sig to COMMAND's process group, or COMMAND alone.
func (k *lossKiller) signal(sig syscall.Signal) {
	if k.group {
		syscall.Kill(-k.pid, sig)
	} else {
		syscall.Kill(k.pid, sig)
	}
}

// lost says why on stderr, sends SIGTERM and arms the SIGKILL; it returns
// the timer's channel.
func (k *lossKiller) lost() <-chan time.Time {
	grace := k.lock.LeaseDuration() / 6
	target := fmt.Sprintf("COMMAND (pid %d)", k.pid)
	if k.group {
		target = fmt.Sprintf("COMMAND's process group (%d)", k.pid)
	}
	printError(fmt.Errorf("%v; sending SIGTERM to %s, SIGKILL in %v", k.lock.Err(), target, grace.Round(time.Millisecond)))
	k.signal(syscall.SIGTERM)
	k.kill = time.NewTimer(grace)
	return k.kill.C
}

func (k *lossKiller) stop() {
	if k.kill != nil {
		k.kill.Stop()
	}
}
