#!/bin/busybox sh
# The guest's first process, in the initramfs (see initramfs.go): load the
# modules for virtio-9p, mount the host's / read-only as the new root and the
# job's directory writable over its own path, then hand over to guest.sh.
/bin/busybox --install -s /bin
fail() { echo "nfsrig init: $*"; echo o >/proc/sysrq-trigger; sleep 60; }
mount -t proc proc /proc
mount -t devtmpfs dev /dev
while read -r m; do insmod "/modules/$m" || fail "insmod $m"; done </modules/order
job=$(sed -n 's/.* nfsrig.job=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -n "$job" ] || fail "no nfsrig.job= on the kernel command line"
mkdir -p /newroot
opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o "$opts,ro,cache=loose" hostroot /newroot || fail "mount the host's /"
mount -t tmpfs -o mode=1777 tmp /newroot/tmp || fail "tmpfs /tmp"
mount -t tmpfs -o mode=755 run /newroot/run || fail "tmpfs /run"
mount -t 9p -o "$opts" job "/newroot$job" || fail "mount the job directory $job"
mount --move /dev /newroot/dev
umount /proc
exec switch_root /newroot /bin/bash "$job/guest.sh"
