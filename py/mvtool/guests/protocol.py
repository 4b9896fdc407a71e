"""What the default Linux guest prints and writes, so hosts can check it.

The guest's ``/init`` (``guests/linux/init.sh``) is rendered from these constants at build time;
the VMM, the nested host and the tests import them from here. Keep every marker in one place.
"""

from __future__ import annotations

import hashlib

#: Printed by the guest's /init once its modules are loaded.
BOOT_MARKER = "MICROVMM-BOOT-OK"
#: ``MICROVMM-DISK-OK <sha256>``: the pattern was written to /dev/vda and read back unchanged.
DISK_OK = "MICROVMM-DISK-OK"
#: ``MICROVMM-DISK-FAIL <reason>``.
DISK_FAIL = "MICROVMM-DISK-FAIL"
#: ``MICROVMM-READ-BENCH bytes=<n> seconds=<s>``: sequential O_DIRECT read of /dev/vda.
READ_BENCH = "MICROVMM-READ-BENCH"
#: Kernel command-line parameter that turns on the read benchmark.
READ_BENCH_PARAM = "microvmm.bench=read"
#: Kernel command-line parameter that makes /init print the kernel log before powering off.
DMESG_PARAM = "microvmm.dmesg=1"
#: Bytes the read benchmark reads from the start of /dev/vda.
READ_BENCH_BYTES = 64 << 20
#: Kernel command-line parameter ``microvmm.attack=<name>``: /init runs the CVE-2026-5747
#: attack script ``ATTACK_DIR/<name>.sh`` after the disk test (the scripts are only in the attack
#: initramfs, see :mod:`mvtool.attack`).
ATTACK_PARAM = "microvmm.attack"
#: Where the attack initramfs holds the scripts of ``guests/linux/attack/``.
ATTACK_DIR = "/etc/attack"
#: ``ATTACK linux-<name> observed key=value ...``: what an attack script saw (one line per step).
ATTACK_LINE = "ATTACK"

#: The disk test writes DISK_PATTERN at this byte offset of /dev/vda (4 KiB aligned for O_DIRECT).
DISK_TEST_OFFSET = 1 << 20
#: Block size the guest uses for the disk test.
DISK_TEST_BLOCK = 4096
#: Smallest disk the disk test fits on.
DISK_MIN_BYTES = DISK_TEST_OFFSET + DISK_TEST_BLOCK


def _pattern() -> bytes:
    # Not all-zero, not periodic: a disk that dropped the write or shifted it cannot match.
    return b"".join(hashlib.sha256(b"microvmm-disk-pattern-%d" % i).digest()
                    for i in range(DISK_TEST_BLOCK // 32))


#: The 4 KiB the guest writes at DISK_TEST_OFFSET.
DISK_PATTERN = _pattern()
#: sha256 of DISK_PATTERN, as the guest prints it after ``MICROVMM-DISK-OK``.
DISK_PATTERN_SHA256 = hashlib.sha256(DISK_PATTERN).hexdigest()


def disk_round_trip_ok(image_path: str) -> bool:
    """True if the backing file holds DISK_PATTERN at DISK_TEST_OFFSET (host-side check)."""
    with open(image_path, "rb") as f:
        f.seek(DISK_TEST_OFFSET)
        return f.read(DISK_TEST_BLOCK) == DISK_PATTERN


def parse_read_bench(line: str) -> tuple[int, float] | None:
    """``(bytes, seconds)`` from a ``MICROVMM-READ-BENCH`` line, or None."""
    line = line.strip()
    if not line.startswith(READ_BENCH + " "):
        return None
    fields = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    try:
        return int(fields["bytes"]), float(fields["seconds"])
    except (KeyError, ValueError):
        return None


# --- The nested host (L1), see mvtool.nested ----------------------------------------------

#: Printed by the L1 /init once KVM and the host root are ready, just before the job runs.
NESTED_UP = "MICROVMM-NESTED-UP"
#: ``MICROVMM-NESTED-EXIT <status>``: the job's exit status, printed before L1 powers off.
NESTED_EXIT = "MICROVMM-NESTED-EXIT"
#: ``MICROVMM-NESTED-FAIL <reason>``: L1 could not set up the job.
NESTED_FAIL = "MICROVMM-NESTED-FAIL"
#: Kernel command-line parameter of L1 naming the job directory (a host path).
NESTED_JOB_PARAM = "mvtool.job"
#: 9p message size for the host shares (larger is faster for big files).
NESTED_9P_MSIZE = 512 * 1024
