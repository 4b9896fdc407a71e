"""Linux boot protocol: setup-header validation, zero page, e820, vmlinux from bzImage."""

from __future__ import annotations

import itertools
import lzma
import struct
from pathlib import Path

import pytest
from mvtool.vmm import bootloader as bl
from mvtool.vmm import platform
from mvtool.vmm.bootloader import BootImageError


def fake_elf() -> bytes:
    """A minimal x86-64 ELF with one PT_LOAD segment at physical 1 MiB."""
    code = b"\xf4" * 64
    ehdr = bytearray(64)
    ehdr[:4] = b"\x7fELF"
    ehdr[4], ehdr[5], ehdr[6] = 2, 1, 1
    struct.pack_into("<HHIQQQIHHHHHH", ehdr, 16, 2, 62, 1, 0xFFFF_FFFF_8100_0010, 64, 0, 0, 64,
                     56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 120, 0xFFFF_FFFF_8100_0000, 0x10_0000, len(code),
                       len(code) + 4096, 0x1000)
    return bytes(ehdr) + phdr + code


def fake_bzimage(*, version: int = 0x020F, loadflags: int = 0x01, xloadflags: int = 0x03,
                 payload: bytes | None = None, setup_sects: int = 4,
                 alignment: int = 0x20_0000) -> bytes:
    """A bzImage-shaped file: setup sectors with a valid header, then the protected-mode part
    holding an xz-compressed ELF payload."""
    if payload is None:
        payload = lzma.compress(fake_elf(), format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
    setup = bytearray((setup_sects + 1) * 512)
    body = b"\x90" * 0x200 + payload + struct.pack("<I", 12345)
    struct.pack_into("<B", setup, 0x1F1, setup_sects)
    struct.pack_into("<I", setup, 0x1F4, (len(body) + 15) // 16)
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    struct.pack_into("<BB", setup, 0x200, 0xEB, 0x6A)  # jump over the header to 0x26C
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    setup[0x211] = loadflags
    struct.pack_into("<I", setup, 0x22C, 0x7FFF_FFFF)
    struct.pack_into("<I", setup, 0x230, alignment)
    setup[0x234] = 1
    struct.pack_into("<H", setup, 0x236, xloadflags)
    struct.pack_into("<I", setup, 0x238, 2047)
    struct.pack_into("<II", setup, 0x248, 0x200, len(payload))
    struct.pack_into("<Q", setup, 0x258, 0x100_0000)
    struct.pack_into("<I", setup, 0x260, 0x40_0000)
    return bytes(setup) + body + b"\0" * (-len(body) % 16)


def test_valid_header_parses() -> None:
    hdr = bl.parse_setup_header(fake_bzimage())
    assert hdr.version == 0x020F
    assert hdr.kernel_offset == 5 * 512
    assert hdr.relocatable and hdr.kernel_alignment == 0x20_0000


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: b"hello", "too short for a setup header"),
    (lambda d: d[:0x1FE] + b"\x00\x00" + d[0x200:], "boot flag"),
    (lambda d: d[:0x202] + b"HdrX" + d[0x206:], "HdrS"),
    (lambda d: d[:0x240], "truncated file"),
    (lambda d: d[:5 * 512 + 40], "truncated file"),
    (lambda d: fake_bzimage(version=0x0206), "boot protocol 2.06 is too old; need 2.12"),
    (lambda d: fake_bzimage(loadflags=0), "LOADED_HIGH"),
    (lambda d: fake_bzimage(xloadflags=0), "XLF_KERNEL_64"),
    (lambda d: fake_bzimage(alignment=0x30_0000), "power of two"),
])
def test_header_errors_are_one_line(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BootImageError) as info:
        bl.parse_setup_header(mutate(fake_bzimage()), "k")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_extract_vmlinux_from_xz_payload() -> None:
    assert bl.extract_vmlinux(fake_bzimage()) == fake_elf()


def test_extract_vmlinux_from_gzip_payload() -> None:
    import gzip

    data = fake_bzimage(payload=gzip.compress(fake_elf()))
    assert bl.extract_vmlinux(data) == fake_elf()


def test_extract_rejects_corrupt_payload() -> None:
    payload = bytearray(lzma.compress(fake_elf(), format=lzma.FORMAT_XZ))
    payload[len(payload) // 2] ^= 0xFF
    with pytest.raises(BootImageError, match="corrupt xz payload"):
        bl.extract_vmlinux(fake_bzimage(payload=bytes(payload)))
    with pytest.raises(BootImageError, match="unknown payload compression"):
        bl.extract_vmlinux(fake_bzimage(payload=b"\x42" * 64))


def test_e820_map() -> None:
    mem = 256 * platform.MIB
    e = bl.e820_map(mem)
    assert e == [(0, platform.EBDA_START, 1),
                 (platform.EBDA_START, platform.HIGH_MEMORY - platform.EBDA_START, 2),
                 (platform.HIGH_MEMORY, mem - platform.HIGH_MEMORY, 1)]
    # contiguous, covers [0, mem)
    assert all(a + s == b for (a, s, _), (b, _, _) in itertools.pairwise(e))
    assert e[-1][0] + e[-1][1] == mem


def test_zero_page_fields() -> None:
    data = fake_bzimage()
    hdr = bl.parse_setup_header(data)
    image = bl.KernelImage("bzImage", 0x100_0200, 0x100_0000, 0x140_0000,
                           data[0x1F1:hdr.header_end], hdr.initrd_addr_max,
                           hdr.kernel_alignment, hdr.cmdline_size)
    zp = bl.build_zero_page(image, 128 * platform.MIB, platform.CMDLINE_ADDR, 17,
                            bl.Initrd(0x700_0000, 0x12345), platform.ACPI_RSDP_ADDR)
    assert len(zp) == 4096
    assert struct.unpack_from("<H", zp, 0x1FE)[0] == 0xAA55
    assert zp[0x202:0x206] == b"HdrS"
    assert zp[0x210] == 0xFF
    assert zp[0x211] & 0x81 == 0x81
    assert struct.unpack_from("<I", zp, 0x228)[0] == platform.CMDLINE_ADDR
    assert struct.unpack_from("<II", zp, 0x218) == (0x700_0000, 0x12345)
    assert struct.unpack_from("<Q", zp, 0x070)[0] == platform.ACPI_RSDP_ADDR
    n = zp[0x1E8]
    table = [struct.unpack_from("<QQI", zp, 0x2D0 + 20 * i) for i in range(n)]
    assert table == bl.e820_map(128 * platform.MIB)


def test_synthesized_header_for_vmlinux_is_valid() -> None:
    hdr = bl.synthesized_setup_header()
    page = bytearray(0x1F1) + hdr
    assert struct.unpack_from("<H", page, 0x1FE)[0] == 0xAA55
    assert page[0x202:0x206] == b"HdrS"
    assert page[0x201] + 0x202 == len(page)


def test_missing_kernel_file(tmp_path: Path) -> None:
    with pytest.raises(BootImageError, match="no such file"):
        bl.read_kernel_file(tmp_path / "nope")


# --- loading into real guest RAM (needs KVM for the memory slot) ----------------------------

from kvm_util import KVM_DEVICE, needs_kvm


@needs_kvm
class TestLoadIntoGuestRam:
    @pytest.fixture
    def mem(self):  # type: ignore[no-untyped-def]
        from mvtool.vmm.kvm import Vm

        vm = Vm(KVM_DEVICE)
        yield vm.set_memory(64 * platform.MIB)
        vm.close()

    def test_vmlinux_segments_land_at_physical_addresses(self, mem, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        k = tmp_path / "vmlinux"
        k.write_bytes(fake_elf())
        image = bl.load_kernel(mem, k)
        assert image.kind == "vmlinux"
        assert image.entry == 0x10_0010  # virtual e_entry translated through the segment
        assert mem.read(0x10_0000, 64) == b"\xf4" * 64
        assert image.load_end == 0x10_0000 + 64 + 4096

    def test_bzimage_protected_mode_part_is_loaded(self, mem, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        data = fake_bzimage()
        k = tmp_path / "bzImage"
        k.write_bytes(data)
        image = bl.load_kernel(mem, k)
        assert image.kind == "bzImage"
        assert image.entry == 0x100_0000 + 0x200
        assert mem.read(0x100_0000, 16) == data[5 * 512:5 * 512 + 16]

    def test_initrd_high_aligned_above_kernel(self, mem, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        k = tmp_path / "vmlinux"
        k.write_bytes(fake_elf())
        image = bl.load_kernel(mem, k)
        rd = tmp_path / "initrd"
        rd.write_bytes(b"R" * 3_000_000)
        placed = bl.load_initrd(mem, rd, image)
        assert placed.addr % (2 * platform.MIB) == 0
        assert placed.addr + placed.size <= mem.size
        assert placed.addr >= image.load_end
        assert mem.read(placed.addr, 4) == b"RRRR"
        rd.write_bytes(b"R" * (70 * platform.MIB))
        with pytest.raises(BootImageError, match="does not fit"):
            bl.load_initrd(mem, rd, image)

    def test_segment_outside_ram_is_rejected(self, mem, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        elf = bytearray(fake_elf())
        struct.pack_into("<Q", elf, 64 + 24, 0x8000_0000)  # p_paddr beyond 64 MiB
        k = tmp_path / "vmlinux"
        k.write_bytes(bytes(elf))
        with pytest.raises(BootImageError, match="does not fit"):
            bl.load_kernel(mem, k)
