package nfsrig

import (
	"fmt"
	"os"
	"strings"
)

// ExportDir is the guest's directory that its NFS server exports (on the
// guest's tmpfs /tmp, as the NFSv4 root too).
const ExportDir = "/tmp/export"

// InGuest reports whether this process runs in the guest, as (or under) a
// job's program.
func InGuest() bool { return os.Getenv(guestVar) == "1" }

// MountArgs returns the arguments of mount(8) that mount ExportDir from the
// guest's NFS server on dir with NFS version vers ("3", "4.2"), options
// added to the rig's: nosharecache, so that every mount has its own
// superblock and so its own attribute and dentry caches, as on separate
// hosts; for NFSv3 nolock too (the rig runs no lock daemon: flock and fcntl
// locks stay local to a mount's machine).
func MountArgs(vers, dir string, options ...string) []string {
	opts := append([]string{"vers=" + vers, "nosharecache"}, options...)
	source := "127.0.0.1:/" // fsid=0: the NFSv4 root
	if vers == "3" {
		opts = append(opts, "nolock")
		source = "127.0.0.1:" + ExportDir
	}
	return []string{"-t", "nfs", "-o", strings.Join(opts, ","), source, dir}
}

// SetDelegations turns the server's NFSv4 delegations on (its default) or
// off, for the files opened from then on: it sets fs.leases-enable, since
// the kernel server grants a delegation only where it can take a lease. In
// the guest only.
func SetDelegations(on bool) error {
	if !InGuest() {
		return fmt.Errorf("nfsrig: delegations: not in the guest")
	}
	value := "0\n"
	if on {
		value = "1\n"
	}
	if err := os.WriteFile("/proc/sys/fs/leases-enable", []byte(value), 0); err != nil {
		return fmt.Errorf("nfsrig: delegations: %w", err)
	}
	return nil
}
