//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// mount(8) runs /sbin/mount.TYPE for a filesystem of a type it does not
// know itself, as "mount.TYPE SOURCE TARGET [-sfnv] [-N NS] [-o OPTIONS]
// [-t TYPE]", and waits for it to exit. nfslockfs installed as
// mount.nfslockfs (a link) is that helper, so that the fstab line
//
//	/mnt/shared/locks /srv/nfslocks nfslockfs defaults,allow_other,_netdev 0 0
//
// and "mount -t nfslockfs BACKING MOUNTPOINT -o OPTIONS" mount nfslockfs.
// As rclone, gocryptfs and JuiceFS do, the helper starts the daemon in the
// background and returns once the daemon has mounted, or with the daemon's
// error if it could not: mount(8) neither waits for ever nor returns
// before the mountpoint is ready.
const mountHelperName = "mount.nfslockfs"

// Exit statuses of mount helpers, as mount(8) documents them.
const (
	mountExitUsage  = 1  // incorrect invocation or permissions
	mountExitFailed = 32 // mount failure
)

// readyTimeout bounds the wait for the daemon to mount. A mount that is
// not up by then (a backing directory on an NFS server that does not
// answer) fails, and the daemon is killed.
const readyTimeout = 60 * time.Second

// detachedEnv marks a daemon started by the helper: it logs to stderr
// (which mount(8) shows) until it has mounted, then to its lasting place.
const detachedEnv = "NFSLOCKFS_DETACHED"

// isDetached reports whether this daemon was started by mount.nfslockfs,
// and clears the mark so that nothing the daemon runs inherits it.
func isDetached() bool {
	detached := os.Getenv(detachedEnv) == "1"
	os.Unsetenv(detachedEnv)
	return detached
}

// mountHelperMain is mount.nfslockfs: it starts the daemon and waits until
// it says it is ready (the sd_notify protocol, on a socket of the helper's
// own) or exits.
func mountHelperMain(args []string) int {
	req, err := parseMountArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", mountHelperName, err)
		return mountExitUsage
	}
	if req.fake {
		return 0
	}
	exe, err := os.Executable()
	if err == nil {
		err = startDaemon(exe, req.daemonArgs, readyTimeout)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", mountHelperName, err)
		return mountExitFailed
	}
	return 0
}

// A mountRequest is what mount(8) asks of the helper.
type mountRequest struct {
	daemonArgs []string // nfslockfs's command line: options, BACKING_DIR, MOUNTPOINT
	fake       bool     // -f: do everything but mount
}

// Mount options of nfslockfs's own, and the daemon's flag each becomes.
var (
	mountSwitches = map[string]string{"allow_other": "--allow-other", "debug": "--debug", "no_lock_on_open": "--no-lock-on-open"}
	mountValues   = map[string]string{
		"format":         "--format",
		"log_level":      "--log-level",
		"log_format":     "--log-format",
		"log_file":       "--log-file",
		"metrics_listen": "--metrics-listen",
	}
	// ignoredMountOptions mean something to mount(8), fstab or systemd,
	// not to the daemon (a FUSE mount is nosuid and nodev anyway).
	ignoredMountOptions = []string{
		"defaults", "rw", "auto", "noauto", "user", "nouser", "users", "owner", "group",
		"_netdev", "nofail", "suid", "nosuid", "dev", "nodev", "exec", "noexec",
		"async", "atime", "noatime", "relatime", "norelatime", "strictatime", "nostrictatime",
		"diratime", "nodiratime", "lazytime", "nolazytime",
	}
	ignoredMountPrefixes = []string{"x-", "X-", "comment="}
)

// parseMountArgs parses mount(8)'s helper command line.
func parseMountArgs(args []string) (mountRequest, error) {
	var (
		req      mountRequest
		sloppy   bool
		options  []string
		operands []string
	)
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-o" || a == "-t" || a == "-N":
			if i+1 == len(args) {
				return req, fmt.Errorf("%s needs a value", a)
			}
			i++
			if a == "-o" {
				options = append(options, strings.Split(args[i], ",")...)
			}
		case strings.HasPrefix(a, "-o"):
			options = append(options, strings.Split(a[2:], ",")...)
		case strings.HasPrefix(a, "-t"), strings.HasPrefix(a, "-N"):
		case len(a) > 1 && a[0] == '-':
			for _, c := range a[1:] {
				switch c {
				case 's':
					sloppy = true
				case 'f':
					req.fake = true
				case 'n', 'v':
				default:
					return req, fmt.Errorf("unknown option -%c", c)
				}
			}
		default:
			operands = append(operands, a)
		}
	}
	if len(operands) != 2 {
		return req, fmt.Errorf("want BACKING_DIR and MOUNTPOINT, got %d operands", len(operands))
	}
	for _, opt := range options {
		name, value, hasValue := strings.Cut(opt, "=")
		switch {
		case opt == "":
		case opt == "ro":
			return req, errors.New("option ro: a lock filesystem cannot be mounted read-only")
		case mountSwitches[opt] != "":
			req.daemonArgs = append(req.daemonArgs, mountSwitches[opt])
		case mountValues[name] != "" && hasValue:
			req.daemonArgs = append(req.daemonArgs, mountValues[name]+"="+value)
		case slices.Contains(ignoredMountOptions, opt) || slices.ContainsFunc(ignoredMountPrefixes, func(p string) bool { return strings.HasPrefix(opt, p) }):
		case sloppy:
		default:
			return req, fmt.Errorf("unknown mount option %q (see nfslockfs(8))", opt)
		}
	}
	req.daemonArgs = append(req.daemonArgs, "--", operands[0], operands[1])
	return req, nil
}

// startDaemon starts the daemon exe (nfslockfs) with args in a session of
// its own and waits until it reports that it has mounted. The daemon's own
// error, if it fails first, is on the helper's stderr, which it shares
// until then. Past timeout the daemon is killed.
func startDaemon(exe string, args []string, timeout time.Duration) error {
	dir, err := os.MkdirTemp("", "nfslockfs-mount-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sock := &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"}
	conn, err := net.ListenUnixgram("unixgram", sock)
	if err != nil {
		return err
	}
	defer conn.Close()

	cmd := &exec.Cmd{
		Path:        exe,
		Args:        append([]string{"nfslockfs"}, args...),
		Env:         append(os.Environ(), "NOTIFY_SOCKET="+sock.Name, detachedEnv+"=1"),
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // ends when the daemon exits, which may be long after the helper
	ready := make(chan struct{})
	go awaitReady(conn, ready) // ends when conn is closed, as the helper returns

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-ready:
		return nil
	case err := <-exited:
		return fmt.Errorf("nfslockfs did not mount: %w", err)
	case <-timer.C:
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("nfslockfs did not mount within %v; killed it", timeout)
	}
}

// awaitReady closes ready when a datagram on conn says READY=1.
func awaitReady(conn *net.UnixConn, ready chan<- struct{}) {
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		if slices.Contains(strings.Split(string(buf[:n]), "\n"), "READY=1") {
			close(ready)
			return
		}
	}
}
