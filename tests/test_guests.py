"""The default Linux guest: kernel extraction, module resolution, deterministic initramfs."""

from __future__ import annotations

import hashlib
import lzma
import shutil
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from mvtool.errors import MvtoolError
from mvtool.guests import protocol
from mvtool.guests.cpio import Archive
from mvtool.guests.kernel import extract_vmlinux, find_cached_kernel, read_modinfo

KERNEL = find_cached_kernel()
needs_kernel = pytest.mark.skipif(
    KERNEL is None, reason="Debian guest kernel not fetched: run `python -m mvtool guest build`")


def read_newc(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int], int]]:
    """Independent newc reader: path -> (mode, data, (rdevmajor, rdevminor), mtime)."""
    out = {}
    pos = 0
    while True:
        assert data[pos:pos + 6] == b"070701", f"bad magic at {pos}"
        f = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, mtime, size, rmaj, rmin, namesize = f[1], f[5], f[6], f[9], f[10], f[11]
        name_start = pos + 110
        name = data[name_start:name_start + namesize - 1].decode()
        pos = name_start + namesize
        pos += -pos % 4
        body = data[pos:pos + size]
        pos += size
        pos += -pos % 4
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, body, (rmaj, rmin), mtime)


# --- cpio ------------------------------------------------------------------------------------


def test_cpio_is_sorted_and_readable_by_cpio_tool(tmp_path: Path) -> None:
    arc = Archive()
    arc.file("z/last", b"zz")
    arc.file("a/first", b"hello", 0o755)
    arc.symlink("bin/sh", "busybox")
    arc.chardev("dev/console", 5, 1)
    data = arc.to_bytes()
    entries = read_newc(data)
    assert list(entries) == sorted(entries)
    assert entries["a/first"][1] == b"hello"
    assert stat.S_IMODE(entries["a/first"][0]) == 0o755
    assert stat.S_ISLNK(entries["bin/sh"][0]) and entries["bin/sh"][1] == b"busybox"
    assert stat.S_ISCHR(entries["dev/console"][0]) and entries["dev/console"][2] == (5, 1)
    assert {"a", "z", "bin", "dev"} <= set(entries)  # parents are created
    if shutil.which("cpio"):
        listing = subprocess.run(["cpio", "-it", "--quiet"], input=data, capture_output=True,
                                 check=True).stdout.decode().split()
        assert listing == sorted(entries)


# --- kernel extraction ---------------------------------------------------------------------


def _fake_bzimage(payload: bytes, setup_sects: int = 4) -> bytes:
    img = bytearray((setup_sects + 1) * 512)
    img[0x1F1] = setup_sects
    img[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", img, 0x206, 0x20F)
    struct.pack_into("<II", img, 0x248, 0x100, len(payload))
    img += bytes(0x100) + payload
    return bytes(img)


FAKE_ELF = b"\x7fELF\x02\x01\x01" + bytes(57) + b"kernel text" * 100


def test_extract_vmlinux_xz_and_gzip_payloads() -> None:
    xz = lzma.compress(FAKE_ELF, format=lzma.FORMAT_XZ) + struct.pack("<I", len(FAKE_ELF))
    assert extract_vmlinux(_fake_bzimage(xz)) == FAKE_ELF
    co = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    gz = co.compress(FAKE_ELF) + co.flush() + struct.pack("<I", len(FAKE_ELF))
    assert extract_vmlinux(_fake_bzimage(gz)) == FAKE_ELF


@pytest.mark.skipif(shutil.which("zstd") is None, reason="zstd tool not installed")
def test_extract_vmlinux_zstd_payload() -> None:
    z = subprocess.run(["zstd", "-q", "-c"], input=FAKE_ELF, capture_output=True,
                       check=True).stdout
    assert extract_vmlinux(_fake_bzimage(z + struct.pack("<I", len(FAKE_ELF)))) == FAKE_ELF


@pytest.mark.parametrize("image, message", [
    (b"MZ" + bytes(0x300), "not a bzImage"),
    (_fake_bzimage(b"\x00\x01\x02\x03garbage"), "compression not supported"),
    (_fake_bzimage(lzma.compress(b"not an elf")), "did not decompress to an ELF"),
])
def test_extract_vmlinux_rejects_bad_images(image: bytes, message: str) -> None:
    with pytest.raises(MvtoolError, match=message):
        extract_vmlinux(image)


@needs_kernel
def test_debian_vmlinux_is_the_bzimage_payload() -> None:
    assert KERNEL is not None
    elf = extract_vmlinux(KERNEL.bzimage.read_bytes())
    assert elf[:4] == b"\x7fELF" and struct.unpack_from("<H", elf, 18)[0] == 0x3E  # x86-64
    assert KERNEL.vmlinux.read_bytes() == elf


@needs_kernel
def test_module_dependencies_come_first() -> None:
    assert KERNEL is not None
    idx = KERNEL.module_index()
    info = read_modinfo(idx.path("virtio_blk").read_bytes())
    assert set(info["depends"][0].split(",")) == {"virtio", "virtio_ring"}
    order = [p.name for p in idx.load_order(["9p", "kvm-amd"])]
    for before, after in [("9pnet.ko", "9p.ko"), ("netfs.ko", "9p.ko"), ("fscache.ko", "9p.ko"),
                          ("kvm.ko", "kvm-amd.ko")]:
        assert order.index(before) < order.index(after)
    with pytest.raises(MvtoolError, match="not found"):
        idx.path("no_such_module")


# --- the built initramfs -------------------------------------------------------------------


@needs_kernel
def test_guest_initramfs_contents_and_reproducible() -> None:
    from mvtool.guests.build import (
        GUEST_MODULES,
        build_guest_initramfs,
        build_host_initramfs,
        find_static_busybox,
    )

    assert KERNEL is not None
    busybox = find_static_busybox()
    first = build_guest_initramfs(KERNEL, busybox)
    second = build_guest_initramfs(KERNEL, busybox)
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    entries = read_newc(first)
    assert {e[3] for e in entries.values()} == {0}  # fixed mtimes
    modules = entries["etc/modules"][1].decode().split()
    want = [n.replace("_", "-") for n in GUEST_MODULES]
    assert [m[:-3].replace("_", "-") for m in modules] == want
    for m in modules:
        body = entries[f"lib/modules/{m}"][1]
        assert body == (KERNEL.module_index().path(m[:-3])).read_bytes()
    init = entries["init"]
    assert init[0] & 0o111 and init[1].startswith(b"#!/bin/sh")
    text = init[1].decode()
    for marker in (protocol.BOOT_MARKER, protocol.DISK_OK, protocol.DISK_FAIL,
                   protocol.READ_BENCH, protocol.READ_BENCH_PARAM):
        assert marker in text
    assert "@" not in text.replace("$@", "")  # every placeholder filled
    assert entries["etc/disk-pattern"][1] == protocol.DISK_PATTERN
    assert entries["bin/busybox"][1] == busybox.read_bytes()
    assert stat.S_ISCHR(entries["dev/console"][0])
    host = read_newc(build_host_initramfs(KERNEL, busybox))
    host_modules = host["etc/modules"][1].decode().split()
    assert {"kvm-amd.ko", "9p.ko", "9pnet_virtio.ko"} <= set(host_modules)
    assert protocol.NESTED_EXIT in host["init"][1].decode()


def test_default_guest_not_built_is_one_line_error(tmp_path: Path) -> None:
    env = {"MVTOOL_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "mvtool", "guest", "info"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        "mvtool: error: default guest not built: run `python -m mvtool guest build`"]


def test_disk_pattern_is_checked_at_its_offset(tmp_path: Path) -> None:
    img = tmp_path / "d.img"
    with open(img, "wb") as f:
        f.truncate(protocol.DISK_MIN_BYTES)
    assert not protocol.disk_round_trip_ok(str(img))
    with open(img, "r+b") as f:
        f.seek(protocol.DISK_TEST_OFFSET - 512)  # misplaced by one sector
        f.write(protocol.DISK_PATTERN)
    assert not protocol.disk_round_trip_ok(str(img))
    with open(img, "r+b") as f:
        f.seek(protocol.DISK_TEST_OFFSET)
        f.write(protocol.DISK_PATTERN)
    assert protocol.disk_round_trip_ok(str(img))


def test_parse_read_bench() -> None:
    assert protocol.parse_read_bench(f"{protocol.READ_BENCH} bytes=67108864 seconds=1.25") == (
        67108864, 1.25)
    assert protocol.parse_read_bench(f"{protocol.READ_BENCH} bytes=x seconds=1") is None
    assert protocol.parse_read_bench("something else") is None


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="not a Debian host (no apt-get)")
def test_apt_failure_is_one_line_error(tmp_path: Path) -> None:
    from mvtool.guests.kernel import fetch_kernel

    with pytest.raises(MvtoolError, match=r"apt-get download failed: .*linux-image-no-such"):
        fetch_kernel("linux-image-no-such-kernel-amd64", cache=tmp_path, log=lambda _m: None)
    assert not any(tmp_path.glob("*/.complete"))
