"""Builds the default Linux guest and the nested host's initramfs.

Outputs, under ``CACHE_DIR/guest/``:

* ``initramfs-guest.cpio`` — busybox, the virtio modules, ``/init`` from ``guests/linux/init.sh``;
* ``initramfs-host.cpio`` — busybox, KVM + 9p modules, ``/init`` from ``guests/linux/host-init.sh``;
* ``guest.json`` — the manifest :func:`mvtool.guests.default_guest` reads.

Both archives are deterministic (see :mod:`mvtool.guests.cpio`): same kernel package, same
busybox and same scripts give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mvtool.errors import MvtoolError
from mvtool.guests import protocol
from mvtool.guests.cpio import Archive
from mvtool.guests.kernel import DebianKernel, ModuleIndex, fetch_kernel
from mvtool.paths import CACHE_DIR, GUESTS_DIR

GUEST_DIR = CACHE_DIR / "guest"
SCRIPTS_DIR = GUESTS_DIR / "linux"
MANIFEST = GUEST_DIR / "guest.json"

#: Guest modules, in load order (Debian builds all of virtio as modules).
GUEST_MODULES = ("virtio_ring", "virtio", "virtio_mmio", "virtio_blk", "virtio-rng")
#: Nested-host modules: virtio-mmio for the 9p transport, KVM for AMD (the emulated CPU has SVM).
HOST_MODULES = ("virtio_ring", "virtio", "virtio_mmio", "irqbypass", "ccp", "kvm", "kvm-amd",
                "netfs", "fscache", "9pnet", "9pnet_virtio", "9p")

#: Kernel command line of the default guest. ``lpj``/``tsc_early_khz`` skip calibration, which
#: hangs under software emulation; ``panic=-1`` turns a panic into a reset; the
#: platform has no PCI (devices are described in ACPI), so ``pci=off`` skips the bus probe.
GUEST_CMDLINE = "console=ttyS0 quiet panic=-1 pci=off lpj=8400052 tsc_early_khz=2100000"
#: Kernel command line of the nested host (L1), which always runs under software emulation.
HOST_CMDLINE = "console=ttyS0 quiet panic=-1 lpj=8400052 tsc_early_khz=2100000"

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


@dataclass(frozen=True)
class BuildResult:
    kernel: DebianKernel
    guest_initrd: Path
    host_initrd: Path
    guest_sha256: str
    host_sha256: str


def find_static_busybox() -> Path:
    """A statically linked busybox (Debian package ``busybox-static``)."""
    for cand in BUSYBOX_CANDIDATES:
        p = Path(cand)
        if p.is_file() and _is_static_elf(p.read_bytes()):
            return p
    raise MvtoolError("no static busybox found: install the Debian package busybox-static")


def _is_static_elf(data: bytes) -> bool:
    if not data.startswith(b"\x7fELF") or data[4] != 2:
        return False
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        if struct.unpack_from("<I", data, phoff + i * phentsize)[0] == 3:  # PT_INTERP
            return False
    return True


def _busybox_applets(busybox: Path) -> list[str]:
    proc = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=False)
    applets = sorted(set(proc.stdout.split()) - {"busybox"})
    if proc.returncode != 0 or "sh" not in applets:
        raise MvtoolError(f"{busybox} --list failed or has no 'sh' applet")
    return applets


def render(template: Path, values: dict[str, object]) -> bytes:
    """``template`` with every ``@NAME@`` replaced; an unknown or unused name is an error."""
    text = template.read_text()
    for name, value in values.items():
        key = f"@{name}@"
        if key not in text:
            raise MvtoolError(f"{template}: placeholder {key} not used")
        text = text.replace(key, str(value))
    if "@" in text.replace("$@", ""):
        leftover = text[text.index("@"):][:40].splitlines()[0]
        raise MvtoolError(f"{template}: unfilled placeholder near {leftover!r}")
    return text.encode()


def _base_archive(busybox: Path, modules: ModuleIndex, wanted: tuple[str, ...]) -> Archive:
    arc = Archive()
    for d in ("dev", "proc", "sys", "tmp", "etc", "lib/modules", "mnt"):
        arc.dir(d)
    arc.chardev("dev/console", 5, 1)
    arc.chardev("dev/null", 1, 3, 0o666)
    arc.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in _busybox_applets(busybox):
        arc.symlink(f"bin/{applet}", "busybox")
    names = []
    for ko in modules.load_order(wanted):
        arc.file(f"lib/modules/{ko.name}", ko.read_bytes())
        names.append(ko.name)
    arc.file("etc/modules", ("\n".join(names) + "\n").encode())
    return arc


def build_guest_initramfs(kernel: DebianKernel, busybox: Path) -> bytes:
    """The default guest's initramfs as bytes."""
    arc = _base_archive(busybox, kernel.module_index(), GUEST_MODULES)
    arc.file("etc/disk-pattern", protocol.DISK_PATTERN)
    arc.file("init", render(SCRIPTS_DIR / "init.sh", {
        "BOOT_MARKER": protocol.BOOT_MARKER,
        "DISK_OK": protocol.DISK_OK,
        "DISK_FAIL": protocol.DISK_FAIL,
        "DISK_TEST_OFFSET": protocol.DISK_TEST_OFFSET,
        "DISK_TEST_BLOCK": protocol.DISK_TEST_BLOCK,
        "READ_BENCH": protocol.READ_BENCH,
        "READ_BENCH_PARAM": protocol.READ_BENCH_PARAM,
        "READ_BENCH_BYTES": protocol.READ_BENCH_BYTES,
        "DMESG_PARAM": protocol.DMESG_PARAM,
        "ATTACK_PARAM": protocol.ATTACK_PARAM,
        "ATTACK_DIR": protocol.ATTACK_DIR,
        "ATTACK_LINE": protocol.ATTACK_LINE,
    }), 0o755)
    return arc.to_bytes()


def build_host_initramfs(kernel: DebianKernel, busybox: Path) -> bytes:
    """The nested host's (L1's) initramfs as bytes."""
    arc = _base_archive(busybox, kernel.module_index(), HOST_MODULES)
    arc.dir("host")
    arc.file("init", render(SCRIPTS_DIR / "host-init.sh", {
        "UP": protocol.NESTED_UP,
        "EXIT": protocol.NESTED_EXIT,
        "FAIL": protocol.NESTED_FAIL,
        "JOB_PARAM": protocol.NESTED_JOB_PARAM,
        "MSIZE": protocol.NESTED_9P_MSIZE,
    }), 0o755)
    return arc.to_bytes()


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def build(*, out_dir: Path = GUEST_DIR, log=print) -> BuildResult:
    """Fetch the kernel (cached) and (re)build both initramfs images and the manifest."""
    kernel = fetch_kernel(log=log)
    busybox = find_static_busybox()
    out_dir.mkdir(parents=True, exist_ok=True)
    guest = build_guest_initramfs(kernel, busybox)
    host = build_host_initramfs(kernel, busybox)
    guest_path = out_dir / "initramfs-guest.cpio"
    host_path = out_dir / "initramfs-host.cpio"
    _write_if_changed(guest_path, guest)
    _write_if_changed(host_path, host)
    manifest = {
        "package": kernel.package,
        "release": kernel.release,
        "bzimage": str(kernel.bzimage),
        "vmlinux": str(kernel.vmlinux) if kernel.vmlinux.is_file() else None,
        "initrd": str(guest_path),
        "host_initrd": str(host_path),
        "cmdline": GUEST_CMDLINE,
        "host_cmdline": HOST_CMDLINE,
        "initrd_sha256": hashlib.sha256(guest).hexdigest(),
        "host_initrd_sha256": hashlib.sha256(host).hexdigest(),
    }
    _write_if_changed(out_dir / "guest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return BuildResult(kernel, guest_path, host_path, manifest["initrd_sha256"],
                       manifest["host_initrd_sha256"])
