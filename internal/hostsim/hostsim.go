// Package hostsim simulates the hosts of a cluster on one machine, for tests.
//
// A host is a set of processes in their own UTS, PID and mount namespaces:
// it has its own hostname, its own pids (the first process is pid 1, so
// pids collide across hosts as on a real cluster) and its own /proc, in
// which /proc/PID/stat describes the host's process PID. Its mounts are
// private: a FUSE filesystem mounted inside one host is seen by that host
// only. Files are shared: every host sees the machine's filesystems, so a
// directory such as a t.TempDir is the cluster's shared storage, and so is
// a FUSE mount (a faultfs) made before the host starts and named to Start:
// the host gets a copy of the mount. It drops its copies of the machine's
// other FUSE mounts, which are someone else's (another test's, run at the
// same time), so that it never keeps them alive. A mount made after the
// host started is not seen in it, and the host's copy of a shared mount
// keeps the filesystem alive until the host dies, so kill hosts before
// unmounting (t.Cleanup's last-in, first-out order does this when the
// mount is made first).
//
// Each host runs an init process, a re-execution of the running binary
// (see reexec.go), which reaps orphans as a real init does: a dead holder
// must not linger as a zombie, which kill(pid, 0) reports as alive. Killing
// the init kills every process of the host at once: a dead host.
//
// The machine's own init must reap orphans too (any init does; in a
// container, run one, e.g. docker --init): a helper killed outside a host
// leaves its inside helper to it, and Kill waits until that is reaped.
//
// What it does not simulate: separate kernels (hosts share one page cache,
// one set of flock and fcntl locks on a shared mount, one clock and one boot
// time), network partitions, or separate users, network or IPC namespaces.
//
// Hosts need root. Every process of a host dies when the host is killed,
// when the context given to Start is done, or when the process that started
// it exits.
package hostsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

const (
	// startTimeout bounds how long Start waits for the host to be ready.
	startTimeout = 10 * time.Second
	// killTimeout bounds how long Kill waits for the host's processes to die.
	killTimeout = 10 * time.Second
)

// Host is a running simulated host.
type Host struct {
	name string
	exe  string    // this binary, run as the host's init and to enter it
	init *exec.Cmd // the host's pid 1
	done chan struct{}
}

// Start starts a host named name (its hostname; give each host its own)
// that shares the FUSE filesystems mounted on the directories shared (which
// must be given as the mount table shows them: absolute, clean, without
// symbolic links); a shared directory that is not a mountpoint is ignored.
// The host lives until Kill, until ctx is done, or until this process exits.
func Start(ctx context.Context, name string, shared ...string) (*Host, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("hostsim: start host %s: %w", name, err)
	}
	ready, readyW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("hostsim: start host %s: %w", name, err)
	}
	defer ready.Close()

	cmd := exec.CommandContext(ctx, exe)
	cmd.Args = append([]string{initArg0, name}, shared...)
	cmd.ExtraFiles = []*os.File{readyW} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUTS | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	h := &Host{name: name, exe: exe, init: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the thread that started the
		// init exits, so that thread is kept for this goroutine until the
		// init has died (an exiting locked goroutine ends its thread).
		runtime.LockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			cmd.Wait()
		}
		close(h.done)
	}()
	err = <-started
	readyW.Close()
	if err != nil {
		return nil, fmt.Errorf("hostsim: start host %s: %w", name, err)
	}

	// The init closes fd 3 when it is ready, or writes why it is not and exits.
	ready.SetReadDeadline(time.Now().Add(startTimeout))
	msg, err := io.ReadAll(ready)
	if err == nil && len(msg) > 0 {
		err = errors.New(string(msg))
	}
	if err != nil {
		h.Kill()
		return nil, fmt.Errorf("hostsim: start host %s: %w", name, err)
	}
	return h, nil
}

// Name returns the host's hostname.
func (h *Host) Name() string { return h.name }

// Command returns a command that runs name with args inside the host, in
// the working directory of the caller (or cmd.Dir, if set). Stdin, Stdout,
// Stderr, ExtraFiles, Env and Dir work as usual.
//
// The command runs under helper processes (see enter.go), and
// cmd.Process is the outermost: it forwards SIGHUP, SIGINT, SIGQUIT,
// SIGTERM, SIGUSR1, SIGUSR2 and SIGALRM to the command, the command dies
// with SIGKILL if it is killed (as exec.CommandContext does when ctx is
// done), and it exits as the command did. The command's pid is known only
// inside the host (a shell can print it: echo $$). SysProcAttr applies to
// the helper, which must keep root's privileges: to run the command as
// another user, use setpriv(1). A signal sent to the whole process group
// reaches the command once directly and once more through each helper.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, h.exe)
	cmd.Args = append([]string{enterArg0, strconv.Itoa(h.init.Process.Pid), name}, args...)
	select {
	case <-h.done:
		cmd.Err = fmt.Errorf("hostsim: host %s is dead", h.name)
	default:
	}
	return cmd
}

// Kill destroys the host: every process in it dies with SIGKILL. It returns
// once they are all gone (including inside helpers orphaned by a killed
// cmd.Process, which the machine's init must reap first), or with an error
// if some are still there after a while (stuck in an uninterruptible wait,
// e.g. on a hung FUSE request). Killing a dead host does nothing.
func (h *Host) Kill() error {
	h.init.Process.Kill() // os.ErrProcessDone if already reaped
	select {
	case <-h.done:
		return nil
	case <-time.After(killTimeout):
		return fmt.Errorf("hostsim: host %s: processes still alive %v after SIGKILL", h.name, killTimeout)
	}
}

// Signal sends sig to every process of the host, its init included: with
// SIGSTOP the host freezes as a machine that hangs (a stuck hypervisor, a
// long swap storm), and SIGCONT thaws it. Processes that start while it
// runs may be missed.
func (h *Host) Signal(sig syscall.Signal) error {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", h.init.Process.Pid))
	if err != nil {
		return fmt.Errorf("hostsim: host %s: %w", h.name, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return fmt.Errorf("hostsim: host %s: %w", h.name, err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && link == ns {
			syscall.Kill(pid, sig)
		}
	}
	return nil
}
