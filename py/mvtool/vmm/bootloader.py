"""Linux x86 boot protocol: load a bzImage or an uncompressed vmlinux ELF, build the zero page.

Reference: the kernel's Documentation/arch/x86/boot.rst ("THE LINUX/x86 BOOT PROTOCOL").
We enter the kernel through the 64-bit boot protocol, which needs protocol version 2.12 or later
(``xloadflags`` with XLF_KERNEL_64, introduced in 2.12, is how a bzImage says it has a 64-bit
entry point at load address + 0x200). Every validation failure raises :class:`BootImageError`
with one line naming the file and what is wrong.

An uncompressed vmlinux ELF (PT_LOAD segments at their physical addresses, entry ``e_entry``)
gets the same zero page with a synthesized setup header, as Firecracker does. Under software
emulation it boots much faster than the bzImage, whose decompressor is slow there;
:func:`extract_vmlinux` cuts the ELF out of a bzImage.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from mvtool.errors import MvtoolError
from mvtool.paths import CACHE_DIR
from mvtool.vmm import platform
from mvtool.vmm.kvm import GuestMemory

MIN_PROTOCOL = 0x020C  # 2.12: xloadflags / XLF_KERNEL_64
BOOT_FLAG = 0xAA55
HDRS_MAGIC = b"HdrS"
LOADED_HIGH = 0x01
CAN_USE_HEAP = 0x80
XLF_KERNEL_64 = 0x01
DEFAULT_KERNEL_ALIGNMENT = 0x100_0000

E820_RAM = 1
E820_RESERVED = 2

ZERO_PAGE_SIZE = 0x1000
# struct boot_params offsets (arch/x86/include/uapi/asm/bootparam.h)
BP_ACPI_RSDP_ADDR = 0x070
BP_EXT_RAMDISK_IMAGE = 0x0C0
BP_EXT_RAMDISK_SIZE = 0x0C4
BP_EXT_CMD_LINE_PTR = 0x0C8
BP_E820_ENTRIES = 0x1E8
BP_HDR = 0x1F1
BP_E820_TABLE = 0x2D0
E820_MAX = 128
# setup header offsets (from the start of the image / zero page)
H_SETUP_SECTS = 0x1F1
H_BOOT_FLAG = 0x1FE
H_JUMP = 0x200
H_HEADER = 0x202
H_VERSION = 0x206
H_TYPE_OF_LOADER = 0x210
H_LOADFLAGS = 0x211
H_RAMDISK_IMAGE = 0x218
H_RAMDISK_SIZE = 0x21C
H_HEAP_END_PTR = 0x224
H_CMD_LINE_PTR = 0x228
H_INITRD_ADDR_MAX = 0x22C
H_KERNEL_ALIGNMENT = 0x230
H_RELOCATABLE = 0x234
H_XLOADFLAGS = 0x236
H_CMDLINE_SIZE = 0x238
H_PAYLOAD_OFFSET = 0x248
H_PAYLOAD_LENGTH = 0x24C
H_PREF_ADDRESS = 0x258
H_INIT_SIZE = 0x260
SETUP_HEADER_MIN_END = 0x268  # a 2.12+ header reaches at least init_size


class BootImageError(MvtoolError):
    """The kernel or initrd cannot be booted (one line: file and reason)."""


@dataclass(frozen=True)
class KernelImage:
    """What was loaded: entry point, occupied range and the setup header for the zero page."""

    kind: str                  #: "bzImage" or "vmlinux"
    entry: int
    load_start: int
    load_end: int              #: end of the memory the kernel may use while booting
    setup_header: bytes        #: bytes 0x1F1..end of the header, copied into the zero page
    initrd_addr_max: int
    kernel_alignment: int
    cmdline_max: int


def _u8(b: bytes, off: int) -> int:
    return b[off]


def _u16(b: bytes, off: int) -> int:
    return struct.unpack_from("<H", b, off)[0]


def _u32(b: bytes, off: int) -> int:
    return struct.unpack_from("<I", b, off)[0]


def _u64(b: bytes, off: int) -> int:
    return struct.unpack_from("<Q", b, off)[0]


def is_elf(data: bytes) -> bool:
    """Whether ``data`` starts like an ELF file."""
    return data[:4] == b"\x7fELF"


def read_kernel_file(path: Path) -> bytes:
    """The kernel file's bytes; one-line error if missing or unreadable."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BootImageError(f"kernel {path}: no such file") from None
    except IsADirectoryError:
        raise BootImageError(f"kernel {path}: is a directory") from None
    except OSError as exc:
        raise BootImageError(f"kernel {path}: cannot read ({exc.strerror})") from None


@dataclass(frozen=True)
class SetupHeader:
    """The fields of a validated bzImage setup header that the loader uses."""

    setup_sects: int
    version: int
    loadflags: int
    xloadflags: int
    relocatable: bool
    kernel_alignment: int
    initrd_addr_max: int
    cmdline_size: int
    pref_address: int
    init_size: int
    payload_offset: int
    payload_length: int
    header_end: int

    @property
    def kernel_offset(self) -> int:
        """File offset of the protected-mode kernel (after the real-mode setup code)."""
        return (self.setup_sects + 1) * 512


def parse_setup_header(data: bytes, name: str = "kernel") -> SetupHeader:
    """Validate a bzImage's setup header; BootImageError with one line per failure."""
    if len(data) < 0x202:
        raise BootImageError(f"{name}: not a bzImage (file is {len(data)} bytes, too short for a "
                             "setup header)")
    if _u16(data, H_BOOT_FLAG) != BOOT_FLAG:
        raise BootImageError(f"{name}: not a bzImage (boot flag {_u16(data, H_BOOT_FLAG):#06x}, "
                             f"expected {BOOT_FLAG:#06x})")
    if len(data) < H_HEADER + 4 or data[H_HEADER:H_HEADER + 4] != HDRS_MAGIC:
        raise BootImageError(f"{name}: not a bzImage (no \"HdrS\" magic at {H_HEADER:#x}; "
                             "pre-2.00 boot protocol or not a kernel)")
    header_end = H_JUMP + 2 + data[H_JUMP + 1]
    if len(data) < max(header_end, SETUP_HEADER_MIN_END):
        raise BootImageError(f"{name}: truncated file (setup header incomplete)")
    version = _u16(data, H_VERSION)
    if version < MIN_PROTOCOL:
        raise BootImageError(f"{name}: boot protocol {version >> 8}.{version & 0xFF:02d} is too "
                             f"old; need {MIN_PROTOCOL >> 8}.{MIN_PROTOCOL & 0xFF:02d} or later")
    if header_end < SETUP_HEADER_MIN_END:
        raise BootImageError(f"{name}: setup header ends at {header_end:#x}, too short for "
                             f"protocol {version >> 8}.{version & 0xFF:02d}")
    loadflags = _u8(data, H_LOADFLAGS)
    if not loadflags & LOADED_HIGH:
        raise BootImageError(f"{name}: zImage (LOADED_HIGH clear); only bzImage kernels load "
                             "at 1 MiB")
    xloadflags = _u16(data, H_XLOADFLAGS)
    if not xloadflags & XLF_KERNEL_64:
        raise BootImageError(f"{name}: no 64-bit entry point (XLF_KERNEL_64 clear in xloadflags)")
    setup_sects = _u8(data, H_SETUP_SECTS) or 4
    alignment = _u32(data, H_KERNEL_ALIGNMENT)
    if alignment == 0 or alignment & (alignment - 1):
        raise BootImageError(f"{name}: kernel_alignment {alignment:#x} is not a power of two")
    hdr = SetupHeader(
        setup_sects=setup_sects,
        version=version,
        loadflags=loadflags,
        xloadflags=xloadflags,
        relocatable=bool(_u8(data, H_RELOCATABLE)),
        kernel_alignment=alignment,
        initrd_addr_max=_u32(data, H_INITRD_ADDR_MAX),
        cmdline_size=_u32(data, H_CMDLINE_SIZE),
        pref_address=_u64(data, H_PREF_ADDRESS),
        init_size=_u32(data, H_INIT_SIZE),
        payload_offset=_u32(data, H_PAYLOAD_OFFSET),
        payload_length=_u32(data, H_PAYLOAD_LENGTH),
        header_end=header_end,
    )
    if hdr.kernel_offset >= len(data):
        raise BootImageError(f"{name}: truncated file (no protected-mode kernel after "
                             f"{setup_sects} setup sectors)")
    syssize = _u32(data, 0x1F4) * 16
    if len(data) < hdr.kernel_offset + syssize:
        raise BootImageError(f"{name}: truncated file ({len(data)} bytes, header says "
                             f"{hdr.kernel_offset + syssize})")
    return hdr


def load_bzimage(mem: GuestMemory, data: bytes, name: str = "kernel") -> KernelImage:
    """Copy a bzImage's protected-mode kernel into guest RAM and return its 64-bit entry."""
    hdr = parse_setup_header(data, name)
    # A relocatable kernel runs where it is put, if aligned; pref_address is its link address.
    load = max(hdr.pref_address, platform.HIGH_MEMORY)
    if not hdr.relocatable:
        load = hdr.pref_address or platform.HIGH_MEMORY
    if load % hdr.kernel_alignment and not hdr.relocatable:
        raise BootImageError(f"{name}: non-relocatable kernel at unaligned {load:#x}")
    body = data[hdr.kernel_offset:]
    end = load + max(len(body), hdr.init_size)
    if end > mem.size:
        raise BootImageError(f"{name}: kernel needs memory up to {end >> 20} MiB, guest has "
                             f"{mem.size >> 20} MiB")
    mem.write(load, body)
    return KernelImage("bzImage", load + 0x200, load, end, data[H_SETUP_SECTS:hdr.header_end],
                       hdr.initrd_addr_max, hdr.kernel_alignment, hdr.cmdline_size)


def load_vmlinux(mem: GuestMemory, path: Path) -> KernelImage:
    """Load an x86-64 vmlinux ELF's PT_LOAD segments at their physical addresses."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise BootImageError(f"kernel {path}: cannot open ({exc.strerror})") from None
    try:
        size = os.fstat(fd).st_size
        ehdr = os.pread(fd, 64, 0)
        if len(ehdr) < 64 or not is_elf(ehdr):
            raise BootImageError(f"{name}: truncated ELF header")
        if ehdr[4] != 2 or ehdr[5] != 1 or _u16(ehdr, 18) != 62:
            raise BootImageError(f"{name}: not a little-endian x86-64 ELF")
        entry = _u64(ehdr, 24)
        phoff, phentsize, phnum = _u64(ehdr, 32), _u16(ehdr, 54), _u16(ehdr, 56)
        if phentsize < 56 or phnum == 0 or phoff + phentsize * phnum > size:
            raise BootImageError(f"{name}: truncated or empty ELF program header table")
        phdrs = os.pread(fd, phentsize * phnum, phoff)
        lo, hi, entry_phys = None, 0, None
        for i in range(phnum):
            ph = phdrs[i * phentsize:(i + 1) * phentsize]
            p_type, offset = _u32(ph, 0), _u64(ph, 8)
            vaddr, paddr, filesz, memsz = _u64(ph, 16), _u64(ph, 24), _u64(ph, 32), _u64(ph, 40)
            if p_type != 1 or memsz == 0:
                continue
            if offset + filesz > size:
                raise BootImageError(f"{name}: truncated file (segment {i} extends past the end)")
            if not mem.contains(paddr, memsz):
                raise BootImageError(f"{name}: segment {i} at {paddr:#x}+{memsz:#x} does not fit "
                                     f"in {mem.size >> 20} MiB of guest RAM")
            # Fresh guest RAM is zero, so the bss (memsz - filesz) needs no clearing.
            if mem.pread_from(fd, paddr, filesz, offset) != filesz:
                raise BootImageError(f"{name}: short read of segment {i}")
            lo = paddr if lo is None else min(lo, paddr)
            hi = max(hi, paddr + memsz)
            if vaddr <= entry < vaddr + memsz:
                entry_phys = paddr + (entry - vaddr)
        if lo is None:
            raise BootImageError(f"{name}: ELF has no loadable segments")
    finally:
        os.close(fd)
    if entry_phys is None:
        entry_phys = entry
    header = synthesized_setup_header()
    return KernelImage("vmlinux", entry_phys, lo, hi, header, 0x7FFF_FFFF,
                       DEFAULT_KERNEL_ALIGNMENT, platform.CMDLINE_MAX - 1)


def synthesized_setup_header() -> bytes:
    """A setup header for a kernel entered without one (vmlinux): boot flag, "HdrS",
    protocol 2.15, loaded high, kernel_alignment 16 MiB."""
    hdr = bytearray(SETUP_HEADER_MIN_END - H_SETUP_SECTS)

    def put(off: int, fmt: str, value: int | bytes) -> None:
        struct.pack_into(fmt, hdr, off - H_SETUP_SECTS, value)

    put(H_BOOT_FLAG, "<H", BOOT_FLAG)
    put(H_JUMP + 1, "<B", SETUP_HEADER_MIN_END - H_JUMP - 2)
    put(H_HEADER, "4s", HDRS_MAGIC)
    put(H_VERSION, "<H", 0x020F)
    put(H_LOADFLAGS, "<B", LOADED_HIGH)
    put(H_KERNEL_ALIGNMENT, "<I", DEFAULT_KERNEL_ALIGNMENT)
    put(H_XLOADFLAGS, "<H", XLF_KERNEL_64)
    put(H_CMDLINE_SIZE, "<I", platform.CMDLINE_MAX - 1)
    return bytes(hdr)


def load_kernel(mem: GuestMemory, path: Path) -> KernelImage:
    """Load ``path`` as a vmlinux ELF or a bzImage, whichever it is."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise BootImageError(f"kernel {path}: no such file") from None
    except IsADirectoryError:
        raise BootImageError(f"kernel {path}: is a directory") from None
    except OSError as exc:
        raise BootImageError(f"kernel {path}: cannot read ({exc.strerror})") from None
    if is_elf(magic):
        return load_vmlinux(mem, path)
    return load_bzimage(mem, read_kernel_file(path), str(path))


@dataclass(frozen=True)
class Initrd:
    """Where the initrd was placed."""

    addr: int
    size: int


def load_initrd(mem: GuestMemory, path: Path, kernel: KernelImage) -> Initrd:
    """Place the initrd at the top of RAM (below initrd_addr_max), 2 MiB aligned down, above
    the kernel; one-line error if missing or if it does not fit."""
    try:
        size = path.stat().st_size
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise BootImageError(f"initrd {path}: no such file") from None
    except OSError as exc:
        raise BootImageError(f"initrd {path}: cannot open ({exc.strerror})") from None
    try:
        if size == 0:
            raise BootImageError(f"initrd {path}: file is empty")
        top = min(mem.size, kernel.initrd_addr_max + 1)
        addr = (top - size) & ~(2 * platform.MIB - 1)
        if top < size or addr < kernel.load_end:
            raise BootImageError(f"initrd {path}: {size >> 20} MiB does not fit above the kernel "
                                 f"in {mem.size >> 20} MiB of guest RAM")
        if mem.pread_from(fd, addr, size, 0) != size:
            raise BootImageError(f"initrd {path}: short read")
    finally:
        os.close(fd)
    return Initrd(addr, size)


def e820_map(mem_size: int) -> list[tuple[int, int, int]]:
    """(address, size, type): usable [0, EBDA), reserved [EBDA, 1 MiB), usable [1 MiB, end)."""
    return [
        (0, platform.EBDA_START, E820_RAM),
        (platform.EBDA_START, platform.HIGH_MEMORY - platform.EBDA_START, E820_RESERVED),
        (platform.HIGH_MEMORY, mem_size - platform.HIGH_MEMORY, E820_RAM),
    ]


def build_zero_page(kernel: KernelImage, mem_size: int, cmdline_addr: int, cmdline_len: int,
                    initrd: Initrd | None, rsdp_addr: int | None) -> bytes:
    """struct boot_params: the kernel's setup header with the loader's fields filled in."""
    zp = bytearray(ZERO_PAGE_SIZE)
    zp[BP_HDR:BP_HDR + len(kernel.setup_header)] = kernel.setup_header
    zp[H_TYPE_OF_LOADER] = 0xFF  # undefined loader
    zp[H_LOADFLAGS] = (zp[H_LOADFLAGS] | LOADED_HIGH | CAN_USE_HEAP) & 0xFF
    struct.pack_into("<H", zp, H_HEAP_END_PTR, 0xFE00)
    struct.pack_into("<I", zp, H_CMD_LINE_PTR, cmdline_addr)
    struct.pack_into("<I", zp, BP_EXT_CMD_LINE_PTR, cmdline_addr >> 32)
    struct.pack_into("<I", zp, H_CMDLINE_SIZE, cmdline_len)
    if initrd is not None:
        struct.pack_into("<I", zp, H_RAMDISK_IMAGE, initrd.addr & 0xFFFF_FFFF)
        struct.pack_into("<I", zp, H_RAMDISK_SIZE, initrd.size & 0xFFFF_FFFF)
        struct.pack_into("<I", zp, BP_EXT_RAMDISK_IMAGE, initrd.addr >> 32)
        struct.pack_into("<I", zp, BP_EXT_RAMDISK_SIZE, initrd.size >> 32)
    if rsdp_addr is not None:
        struct.pack_into("<Q", zp, BP_ACPI_RSDP_ADDR, rsdp_addr)
    entries = e820_map(mem_size)
    zp[BP_E820_ENTRIES] = len(entries)
    for i, (addr, size, kind) in enumerate(entries):
        struct.pack_into("<QQI", zp, BP_E820_TABLE + 20 * i, addr, size, kind)
    return bytes(zp)


def write_cmdline(mem: GuestMemory, cmdline: str, kernel: KernelImage) -> int:
    """Store the NUL-terminated command line at CMDLINE_ADDR; returns its length."""
    raw = cmdline.encode()
    limit = min(platform.CMDLINE_MAX - 1, kernel.cmdline_max or platform.CMDLINE_MAX - 1)
    if len(raw) > limit:
        raise BootImageError(f"command line is {len(raw)} bytes; the kernel accepts {limit}")
    mem.write(platform.CMDLINE_ADDR, raw + b"\0")
    return len(raw)


# --- vmlinux from bzImage ---------------------------------------------------------------------

_MAGICS = {
    b"\x1f\x8b": "gzip",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}


def _decompress(kind: str, payload: bytes, name: str) -> bytes:
    # Imported here: only bzImage extraction needs them, and every import counts at start-up.
    import gzip
    import lzma
    import shutil
    import subprocess

    if kind == "gzip":
        return gzip.GzipFile(fileobj=_Reader(payload)).read()
    if kind == "xz":
        dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        return dec.decompress(payload)  # the kernel appends a 4-byte size; it stays unused
    if kind == "zstd":
        zstd = shutil.which("zstd")
        if zstd is None:
            raise BootImageError(f"{name}: zstd-compressed payload and no `zstd` binary on PATH")
        proc = subprocess.run([zstd, "-d", "-c", "-q"], input=payload, capture_output=True,
                              check=False)
        if not proc.stdout:
            raise BootImageError(f"{name}: zstd failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout
    raise BootImageError(f"{name}: unsupported payload compression {kind}")


class _Reader:
    """A minimal file object over bytes for GzipFile (which tolerates the trailing size)."""

    def __init__(self, data: bytes):
        self._data, self._pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._pos + n
        out = self._data[self._pos:end]
        self._pos += len(out)
        return out


def extract_vmlinux(data: bytes, name: str = "kernel") -> bytes:
    """The uncompressed vmlinux ELF inside a bzImage (payload_offset/payload_length, 2.08+)."""
    hdr = parse_setup_header(data, name)
    start = hdr.kernel_offset + hdr.payload_offset
    payload = data[start:start + hdr.payload_length]
    if len(payload) != hdr.payload_length or not payload:
        raise BootImageError(f"{name}: truncated file (payload past the end)")
    kind = next((k for magic, k in _MAGICS.items() if payload.startswith(magic)), None)
    if kind is None:
        raise BootImageError(f"{name}: unknown payload compression (magic {payload[:6].hex()})")
    import lzma

    try:
        elf = _decompress(kind, payload, name)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise BootImageError(f"{name}: corrupt {kind} payload ({exc})") from None
    if not is_elf(elf):
        raise BootImageError(f"{name}: payload is not an ELF file")
    return elf


def ensure_vmlinux(bzimage: Path) -> Path:
    """Path of the vmlinux extracted from ``bzimage`` (cached under CACHE_DIR/vmlinux/)."""
    data = read_kernel_file(bzimage)
    if is_elf(data[:4]):
        return bzimage
    import hashlib

    digest = hashlib.sha256(data).hexdigest()[:16]
    out = CACHE_DIR / "vmlinux" / f"vmlinux-{digest}"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(extract_vmlinux(data, str(bzimage)))
        tmp.replace(out)
    return out
