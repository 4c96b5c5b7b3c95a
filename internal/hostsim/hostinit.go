package hostsim

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/nfslockfs/nfslockfs/internal/mountinfo"
)

// runInit is pid 1 of a new host, started in new UTS, PID and mount
// namespaces: it sets the host up, reports on fd 3 (closed: ready; a
// message: failed), then reaps orphans, as an init does, until it is
// killed, which kills every process of the host.
func runInit(hostname string) int {
	ready := os.NewFile(3, "ready")
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	if err := setUpHost(hostname); err != nil {
		fmt.Fprint(ready, err)
		return 1
	}
	ready.Close()
	for range sigchld {
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
	return 0
}

func setUpHost(hostname string) error {
	if err := syscall.Sethostname([]byte(hostname)); err != nil {
		return fmt.Errorf("sethostname %q: %w", hostname, err)
	}
	// Mounts made in the host stay in the host, and the host's /proc shows
	// its own pid namespace.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	return dropNodeMounts()
}

// dropNodeMounts detaches the nfslockfs mounts the new mount namespace
// copied from the machine's. Each simulated host runs its own daemon, so it
// never uses another node's mount; and a copy would keep that mount alive
// after its daemon unmounts it, so that a test elsewhere on the machine
// (another package's, run concurrently) would wait for this host to die
// before its daemon's shutdown completes.
func dropNodeMounts() error {
	mounts, err := mountinfo.Read()
	if err != nil {
		return fmt.Errorf("read the mount table: %w", err)
	}
	for _, m := range slices.Backward(mounts) {
		if m.FSType != mountinfo.NFSLockFSType {
			continue
		}
		if err := syscall.Unmount(m.Mountpoint, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			return fmt.Errorf("detach the copy of the nfslockfs mount at %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}
