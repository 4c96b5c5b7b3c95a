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

// backingOf maps a path under the mountpoint to the backing directory.
func (d *daemon) backingOf(p string) string {
	rel, err := filepath.Rel(d.mnt, p)
	if err != nil {
		return p
	}
	return filepath.Join(d.backing, rel)
}

// rss returns the daemon's resident set size in bytes.
func (d *daemon) rss() int64 { return procStatus(d.pid, "VmRSS:") * 1024 }

// isMountpoint reports whether dir is the mount point of a mount.
func isMountpoint(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && unescapeMountinfo(f[4]) == dir {
			return true
		}
	}
	return false
}

func unescapeMountinfo(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}
