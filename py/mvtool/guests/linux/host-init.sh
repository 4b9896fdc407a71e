#!/bin/sh
# /init of the nested host (L1): loads KVM and 9p, enters the host's root read-only and runs the
# job that `mvtool` prepared. Rendered by `mvtool guest build`: placeholders (names between
# at-signs) are filled from py/mvtool/guests/protocol.py.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

while read -r m; do
    insmod "/lib/modules/$m" || echo "nested-init: insmod $m failed"
done < /etc/modules
# Only critical kernel messages on the console: it carries the command's output.
echo 3 > /proc/sys/kernel/printk

fail() {
    echo "@FAIL@ $*"
    poweroff -f
    sleep 1
    reboot -f
}

job=$(sed -n 's/.*@JOB_PARAM@=\([^ ]*\).*/\1/p' /proc/cmdline)
[ -n "$job" ] || fail "no @JOB_PARAM@= on the kernel command line"
[ -e /dev/kvm ] || fail "/dev/kvm missing (kvm-amd did not load)"

opts=trans=virtio,version=9p2000.L,msize=@MSIZE@
mount -t 9p -o $opts,ro,cache=loose host /host || fail "cannot mount the host root"
# Read the job's share list now: the tmpfs mounts below may hide the job directory (a checkout
# under /tmp) until the writable shares are mounted back on top.
[ -f "/host$job/mounts" ] || fail "job $job not found in the host root"
cp "/host$job/mounts" /job-mounts || fail "cannot read the job's share list"
mount -t proc proc /host/proc
mount -t sysfs sysfs /host/sys
mount -t devtmpfs devtmpfs /host/dev
mount -t tmpfs tmpfs /host/tmp
mount -t tmpfs tmpfs /host/run
mkdir -p /host/dev/shm && mount -t tmpfs tmpfs /host/dev/shm
# Writable host directories, each on its own 9p device, at the same path as on the host.
while read -r tag path; do
    # Below a tmpfs (e.g. /tmp) the mount point has to be made first.
    [ -d "/host$path" ] || mkdir -p "/host$path"
    mount -t 9p -o $opts "$tag" "/host$path" || fail "cannot mount $path read-write"
done < /job-mounts

echo "@UP@"
chroot /host /bin/sh "$job/job.sh"
echo "@EXIT@ $?"
sync
poweroff -f
sleep 1
reboot -f
