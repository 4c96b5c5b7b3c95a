// Package nfsrig runs tests against a real kernel NFS server and real NFS
// clients, on a machine whose own kernel has neither: it boots a Linux guest
// under QEMU's TCG emulator, starts the kernel NFS server in it, and runs a
// program of the host there (a Go test binary), which mounts the export
// once per simulated host.
//
// The guest needs no disk image and nothing installed beyond Debian
// packages. Its kernel is the package that linux-image-amd64 depends on,
// fetched with apt-get download into a cache directory and unpacked there
// with dpkg-deb (see kernel.go). A tiny initramfs, built at every run from
// busybox and the kernel's virtio-9p modules (initramfs.go, init.sh), mounts
// the host's / read-only over virtio-9p as the guest's root, so the guest
// runs the host's binaries; the guest has its own /tmp and /run (tmpfs).
// The job's directory, which must therefore be outside /tmp and /run, is
// shared writable at the same path: the host puts the program there, and
// the guest writes its output and exit status back (guest.sh).
//
// Inside the guest (InGuest reports it), ExportDir is exported with
// rw,no_root_squash,fsid=0 to 127.0.0.1 by the kernel NFS server (NFSv3
// and NFSv4.x, NFSv4 lease and grace times 10 s), and MountArgs gives the
// arguments of mount(8) that mount it.
//
// Limits: one server implementation (Linux nfsd) and one client kernel
// version, the guest's; client and server talk over the guest's loopback,
// so a network fault is one made there (netem on lo, connections reset).
// The emulator is several times slower than the host: a process start
// costs about 55 ms in the guest, so a job should work in-process.
//
// Booting needs root (for the tests the guest runs), qemu-system-x86_64,
// apt-get, dpkg-deb, depmod and modprobe (kmod), busybox (static), cpio and
// the NFS server's tools (nfs-kernel-server); Unavailable says what is
// missing.
package nfsrig
