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
// namespaces, which shares the FUSE mounts at the mountpoints shared: it sets the host up, reports on fd 3 (closed: ready; a
// message: failed), then reaps orphans, as an init does, until it is
// killed, which kills every process of the host.
func runInit(hostname string, shared []string) int {
	ready := os.NewFile(3, "ready")
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	if err := setUpHost(hostname, shared); err != nil {
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

func setUpHost(hostname string, shared []string) error {
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
	return dropUnsharedFUSEMounts(shared)
}

// dropUnsharedFUSEMounts detaches the FUSE mounts the new mount namespace
// copied from the machine's, except those at the mountpoints in shared.
// The others belong to someone else: an nfslockfs daemon (each simulated
// host runs its own), another test's faultfs, a test binary of another
// package run at the same time. A copy would keep such a filesystem's
// connection alive after its owner unmounts it, so that the owner's
// unmount would wait for this host to die.
func dropUnsharedFUSEMounts(shared []string) error {
	mounts, err := mountinfo.Read()
	if err != nil {
		return fmt.Errorf("read the mount table: %w", err)
	}
	for _, m := range slices.Backward(mounts) {
		if !mountinfo.IsFUSE(m.FSType) || slices.Contains(shared, m.Mountpoint) {
			continue
		}
		if err := syscall.Unmount(m.Mountpoint, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL && err != syscall.ENOENT {
			return fmt.Errorf("detach the copy of the FUSE mount at %s: %w", m.Mountpoint, err)
		}
	}
	return nil
}
