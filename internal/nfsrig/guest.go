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
// guest's NFS server on dir with NFS version vers ("3", "4.2"), for the
// host-th simulated host (0, 1, ...), options added to the rig's:
// nosharecache, so that every mount has its own superblock and so its own
// attribute and dentry caches, as on separate hosts; for NFSv3 nolock too
// (the rig runs no lock daemon: flock and fcntl locks stay local to a
// mount's machine).
//
// Each host mounts the server at an address of its own, 127.0.0.(host+1):
// the Linux client has one NFSv4 client identity per server address, shared
// by all mounts of it, and the server holds delegations and opens per
// client and recalls none from the client whose request conflicts with it.
// Hosts sharing an identity are one client to the server: a host's read
// delegation of a lock file survives its removal by another host, whose
// mount never hears of it, and its cached name says held forever. With an
// address each, and the hostname of the host's own UTS namespace in the
// client identity, every host is its own client, as on separate machines.
func MountArgs(vers, dir string, host int, options ...string) []string {
	opts := append([]string{"vers=" + vers, "nosharecache"}, options...)
	server := fmt.Sprintf("127.0.0.%d", host+1)
	source := server + ":/" // fsid=0: the NFSv4 root
	if vers == "3" {
		opts = append(opts, "nolock")
		source = server + ":" + ExportDir
	}
	return []string{"-t", "nfs", "-o", strings.Join(opts, ","), source, dir}
}
