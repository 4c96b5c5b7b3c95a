#!/bin/bash
# The guest's process 1 after switch_root (see init.sh): the host's / is the
# root, read-only; /tmp and /run are the guest's own. It starts the kernel NFS
# server exporting /tmp/export, runs the job (job.sh, written by the host)
# with its output in out.log, writes its exit status to status, and powers the
# guest off. Everything it prints goes to the serial console.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
job=$(dirname "$0")
fail() { echo "nfsrig guest: $*"; echo 1 >"$job/status.tmp" && mv "$job/status.tmp" "$job/status"; sync; echo o >/proc/sysrq-trigger; read -r -t 60 _ </dev/console; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p -m 1777 /run/lock
hostname nfsrig
. "$job/kernel.env" || fail "read kernel.env"   # KROOT: the unpacked kernel package
modprobe -a -d "$KROOT" nfsd nfsv3 nfsv4 fuse sch_netem nf_tables nft_reject_inet nft_ct nf_conntrack inet_diag tcp_diag ||
	fail "modprobe"
ip link set lo up
mount -t tmpfs nfs /var/lib/nfs && touch /var/lib/nfs/etab /var/lib/nfs/rmtab && mkdir /var/lib/nfs/v4recovery || fail "/var/lib/nfs"
mount -t nfsd nfsd /proc/fs/nfsd || fail "mount nfsd"
# NFSv4 refuses opens for the grace period after a start (90 s by default).
echo 10 >/proc/fs/nfsd/nfsv4leasetime
echo 10 >/proc/fs/nfsd/nfsv4gracetime
mkdir -p /tmp/export /run/rpcbind
rpcbind -w || fail "rpcbind"
exportfs -o rw,no_root_squash,no_subtree_check,insecure,fsid=0 127.0.0.1:/tmp/export || fail "exportfs"
rpc.mountd || fail "rpc.mountd"
rpc.nfsd 8 || fail "rpc.nfsd"
for i in $(seq 100); do
	services=$(rpcinfo -p 127.0.0.1 2>/dev/null)
	[[ $services == *nfs* && $services == *mountd* ]] && break
	sleep 0.1
done
[[ $services == *nfs* && $services == *mountd* ]] || fail "nfs and mountd not registered with rpcbind: $services"
echo "nfsrig guest: NFS server up after ${SECONDS}s ($(uname -r))"
bash "$job/job.sh" >"$job/out.log" 2>&1 </dev/null
status=$?
echo "nfsrig guest: job exited $status after ${SECONDS}s"
echo $status >"$job/status.tmp" && mv "$job/status.tmp" "$job/status"
sync
echo o >/proc/sysrq-trigger
read -r -t 60 _ </dev/console # a builtin: the root may already be gone
