package hostsim

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// A command runs in a host under two helpers:
//
//	caller ─ enter helper (outside) ─ inside helper (in the host) ─ command
//
// The enter helper is what the caller starts: it joins the host's
// namespaces and starts the inside helper, which starts the command. Each
// helper forwards signals to its child and exits as its child did, and each
// child dies with SIGKILL when its helper dies. Two helpers, not one,
// because a process whose parent dies is adopted by the init of its
// parent's pid namespace: the command, whose parent is inside the host, is
// adopted and reaped by the host's init, so a killed command does not
// linger as a zombie, which looks alive to kill(pid, 0).

// forwarded are the signals the helpers pass on to their child.
var forwarded = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM}

// runEnter runs argv inside the host whose init is initPid.
func runEnter(initPid string, argv []string) int {
	return supervise(argv[0], func() (*exec.Cmd, error) { return startInHost(initPid, argv) })
}

// runInside runs argv; it is the inside helper, already in the host.
func runInside(argv []string) int {
	// Go's SysProcAttr.Pdeathsig cannot be used by the enter helper: the
	// child kills itself at once if its parent's pid is not the one it saw
	// before forking, and from inside the host the parent's pid reads 0.
	unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0)
	return supervise(argv[0], func() (*exec.Cmd, error) {
		cmd := childCommand(argv)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		return cmd, cmd.Start()
	})
}

// supervise starts a child with start, forwards signals to it, and returns
// the exit code that makes this process end as the child did.
func supervise(name string, start func() (*exec.Cmd, error)) int {
	signals := make(chan os.Signal, len(forwarded))
	signal.Notify(signals, forwarded...)
	cmd, err := start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "hostsim: %s: %v\n", name, err)
		return 127
	}
	go func() { // ends with the process
		for sig := range signals {
			cmd.Process.Signal(sig)
		}
	}()
	cmd.Wait()
	return exitAs(cmd.ProcessState)
}

// startInHost starts the inside helper for argv in the namespaces of
// process initPid. Namespaces belong to threads, and a child is born in its
// parent thread's: so this goroutine keeps the main thread (package
// initialization runs on it) to itself for good, moves the thread into the
// host, and starts the child from it.
func startInHost(initPid string, argv []string) (*exec.Cmd, error) {
	runtime.LockOSThread()
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	cmd := childCommand(append([]string{self}, argv...)) // before /proc becomes the host's
	cmd.Args[0] = insideArg0
	// Open every namespace first: in the host's mount namespace, /proc is
	// the host's, where initPid means another process.
	var namespaces []*os.File
	for _, name := range []string{"uts", "mnt", "pid"} {
		f, err := os.Open("/proc/" + initPid + "/ns/" + name)
		if err != nil {
			return nil, fmt.Errorf("enter host: %w", err) // the host is gone
		}
		defer f.Close()
		namespaces = append(namespaces, f)
	}
	// Only a thread whose root and working directory are its own may join
	// a mount namespace.
	if err := syscall.Unshare(syscall.CLONE_FS); err != nil {
		return nil, fmt.Errorf("unshare CLONE_FS: %w", err)
	}
	for _, f := range namespaces {
		if err := unix.Setns(int(f.Fd()), 0); err != nil {
			return nil, fmt.Errorf("setns %s: %w", f.Name(), err)
		}
	}
	// Joining the mount namespace moved the thread to the root directory.
	if err := syscall.Chdir(wd); err != nil {
		return nil, fmt.Errorf("working directory in the host: %w", err)
	}
	return cmd, cmd.Start()
}

// childCommand returns a command for argv that inherits this process's
// standard streams and every other descriptor it inherited.
func childCommand(argv []string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = inheritedFiles()
	return cmd
}

// inheritedFiles returns the descriptors above stderr that this process
// inherited (those not close-on-exec: the caller's ExtraFiles), each at its
// own number, so that a child inherits them too.
func inheritedFiles() []*os.File {
	entries, _ := os.ReadDir("/proc/self/fd")
	var files []*os.File
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		for len(files) <= fd-3 {
			files = append(files, nil)
		}
		files[fd-3] = os.NewFile(uintptr(fd), "inherited")
	}
	return files
}

// exitAs returns the exit code of a child that ended with state or, for a
// child killed by SIGKILL, SIGTERM, SIGINT or SIGHUP, kills this process
// with the same signal. Other signals become 128+N, as in a shell: the Go
// runtime would not die of them.
func exitAs(state *os.ProcessState) int {
	ws := state.Sys().(syscall.WaitStatus)
	if !ws.Signaled() {
		return ws.ExitStatus()
	}
	switch sig := ws.Signal(); sig {
	case syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP:
		signal.Reset(sig)
		syscall.Kill(os.Getpid(), sig)
	}
	return 128 + int(ws.Signal())
}
