package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// A daemon is an nfslockfs mount started for the run.
type daemon struct {
	cmd          *exec.Cmd
	pid          int
	backing, mnt string
	log          string
}

// startDaemon mounts backing on mnt with the nfslockfs binary, in its
// default configuration, logging to a file beside mnt.
func startDaemon(binary, backing, mnt string) (*daemon, error) {
	for _, d := range []string{backing, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	d := &daemon{backing: backing, mnt: mnt, log: mnt + ".log"}
	logf, err := os.Create(d.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command(binary, backing, mnt)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	d.pid = d.cmd.Process.Pid
	for deadline := time.Now().Add(10 * time.Second); !isMountpoint(mnt); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			d.stop()
			log, _ := os.ReadFile(d.log)
			return nil, fmt.Errorf("%s did not mount %s within 10s: %s", binary, mnt, log)
		}
	}
	return d, nil
}

// stop unmounts with SIGTERM, as an operator would.
func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-done
		exec.Command("umount", "-l", d.mnt).Run()
	}
	// The daemon leaves its mountpoint immutable (nothing can be created
	// there while no daemon serves it); the work directory must go.
	exec.Command("chattr", "-i", d.mnt).Run()
}

// rss returns the daemon's resident set size in bytes.
func (d *daemon) rss() int64 { return procStatus(d.pid, "VmRSS:") * 1024 }

// procStatus returns the number in a field of /proc/PID/status.
func procStatus(pid int, field string) int64 {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			var n int64
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}

// isMountpoint reports whether dir is the root of a mount: on another
// device than its parent.
func isMountpoint(dir string) bool {
	var st, parent syscall.Stat_t
	return syscall.Stat(dir, &st) == nil && syscall.Stat(filepath.Dir(dir), &parent) == nil && st.Dev != parent.Dev
}
