#!/bin/sh
# /init of the MicroVMM default Linux guest (busybox). Rendered by `mvtool guest build`:
# placeholders (names between at-signs) are filled from py/mvtool/guests/protocol.py.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp

# Debian builds the virtio drivers as modules; load them in dependency order.
while read -r m; do
    insmod "/lib/modules/$m" || echo "init: insmod $m failed"
done < /etc/modules

echo "@BOOT_MARKER@"

disk_test() {
    blk=@DISK_TEST_BLOCK@
    seek=$((@DISK_TEST_OFFSET@ / blk))
    want=$(sha256sum /etc/disk-pattern | cut -d' ' -f1)
    if ! dd if=/etc/disk-pattern of=/dev/vda bs=$blk seek=$seek count=1 \
            oflag=direct conv=notrunc,fsync 2>/tmp/dd.err; then
        echo "@DISK_FAIL@ write: $(tail -n 1 /tmp/dd.err)"
        return
    fi
    sync
    echo 3 > /proc/sys/vm/drop_caches
    # O_DIRECT read: the bytes come from the device, not from the page cache.
    got=$(dd if=/dev/vda bs=$blk skip=$seek count=1 iflag=direct 2>/tmp/dd.err \
          | sha256sum | cut -d' ' -f1)
    if [ "$got" = "$want" ]; then
        echo "@DISK_OK@ $got"
    else
        echo "@DISK_FAIL@ read back $got, expected $want ($(tail -n 1 /tmp/dd.err))"
    fi
}

now_ns() {
    # Monotonic clock in nanoseconds from /proc/timer_list ("now at N nsecs"); /proc/uptime
    # (10 ms resolution) if that file is absent.
    t=$(sed -n 's/^now at \([0-9]*\) nsecs$/\1/p;/^now at/q' /proc/timer_list 2>/dev/null)
    if [ -n "$t" ]; then
        echo "$t"
    else
        awk '{printf "%.0f", $1 * 1000000000}' /proc/uptime
    fi
}

read_bench() {
    mib=$((@READ_BENCH_BYTES@ >> 20))
    # 1 MiB O_DIRECT reads: every byte comes from the device, in the largest requests the
    # driver builds, with no page cache in between.
    t0=$(now_ns)
    dd if=/dev/vda of=/dev/null bs=1048576 count=$mib iflag=direct 2>/tmp/dd.err
    t1=$(now_ns)
    full=$(sed -n 's/^\([0-9]*\)+0 records in$/\1/p' /tmp/dd.err)
    secs=$(echo "$t1 $t0" | awk '{printf "%.4f", ($1 - $2) / 1000000000}')
    echo "@READ_BENCH@ bytes=$(( ${full:-0} * 1048576 )) seconds=$secs"
}

i=0
while [ ! -b /dev/vda ] && [ -e /sys/bus/virtio/devices/virtio0 ] && [ $i -lt 20 ]; do
    sleep 0.05
    i=$((i + 1))
done
if [ -b /dev/vda ]; then
    disk_test
    case " $(cat /proc/cmdline) " in
        *" @READ_BENCH_PARAM@ "*) read_bench ;;
    esac
fi

# The CVE-2026-5747 demonstration (guests/linux/attack/): a root process rewrites the live
# queue's registers. Only with @ATTACK_PARAM@=<name> and the script in this initramfs.
attack=$(sed -n 's/.*@ATTACK_PARAM@=\([^ ]*\).*/\1/p' /proc/cmdline)
if [ -n "$attack" ]; then
    if [ -x "@ATTACK_DIR@/$attack.sh" ]; then
        "@ATTACK_DIR@/$attack.sh"
    else
        echo "@ATTACK_LINE@ linux-$attack observed error=not-in-this-initramfs"
    fi
fi

case " $(cat /proc/cmdline) " in
    *" @DMESG_PARAM@ "*) dmesg ;;
esac
sync
poweroff -f
sleep 1
reboot -f
