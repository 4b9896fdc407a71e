"""Debian's guest kernel: fetched with apt, unpacked under the cache, never installed.

``linux-image-amd64`` is a metapackage; the kernel it points at (e.g.
``linux-image-6.1.0-56-amd64``) is downloaded with ``apt-get download`` and unpacked with
``dpkg-deb -x`` into ``CACHE_DIR/kernel/<package>/``. The host's ``/boot`` is left alone.

Under software emulation the bzImage decompressor is slow, so the uncompressed ``vmlinux`` ELF is
also cut out of the bzImage (Linux boot protocol: ``payload_offset``/``payload_length`` in the
setup header, offsets 0x248/0x24c, relative to the protected-mode code).
"""

from __future__ import annotations

import lzma
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mvtool.errors import MvtoolError
from mvtool.paths import CACHE_DIR

KERNEL_CACHE = CACHE_DIR / "kernel"
METAPACKAGE = "linux-image-amd64"

_ELF_MAGIC = b"\x7fELF"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class DebianKernel:
    """An unpacked Debian kernel package."""

    package: str
    release: str  #: ``uname -r`` of the kernel, e.g. ``6.1.0-56-amd64``
    root: Path  #: where the package was unpacked

    @property
    def bzimage(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.release}"

    @property
    def vmlinux(self) -> Path:
        """The uncompressed kernel ELF cut out of the bzImage (see :func:`extract_vmlinux`)."""
        return self.root / "vmlinux"

    @property
    def modules_dir(self) -> Path:
        return self.root / "lib" / "modules" / self.release

    def module_index(self) -> ModuleIndex:
        """Index of the package's loadable modules."""
        return ModuleIndex(self.modules_dir)


def _run(cmd: list[str], *, cwd: Path | None = None, what: str) -> str:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise MvtoolError(f"{what}: {cmd[0]} not found (Debian/apt tools are required)") from exc
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise MvtoolError(f"{what} failed: {' '.join(cmd)}: {detail}")
    return proc.stdout


def resolve_kernel_package(metapackage: str = METAPACKAGE) -> str:
    """The concrete ``linux-image-<release>`` package that ``metapackage`` depends on."""
    out = _run(["apt-cache", "depends", metapackage], what=f"resolving {metapackage}")
    for line in out.splitlines():
        m = re.match(r"\s*Depends:\s*(linux-image-\S+)", line)
        if m and not m.group(1).endswith("-amd64-unsigned"):
            return m.group(1)
    raise MvtoolError(f"apt-cache depends {metapackage}: no linux-image dependency found")


def find_cached_kernel(cache: Path = KERNEL_CACHE) -> DebianKernel | None:
    """The newest kernel already unpacked under ``cache``, or None."""
    if not cache.is_dir():
        return None
    stamps = sorted(cache.glob("*/.complete"), key=lambda p: p.stat().st_mtime)
    if not stamps:
        return None
    root = stamps[-1].parent
    return DebianKernel(package=root.name, release=stamps[-1].read_text().strip(), root=root)


def fetch_kernel(package: str | None = None, *, cache: Path = KERNEL_CACHE,
                 log=print) -> DebianKernel:
    """Download and unpack ``package`` (default: what ``linux-image-amd64`` depends on).

    Idempotent: an already unpacked package (marked by ``.complete``) is reused.
    """
    if package is None:
        try:
            package = resolve_kernel_package()
        except MvtoolError:
            cached = find_cached_kernel(cache)
            if cached is None:
                raise
            log(f"guest: apt unavailable, using the cached {cached.package}")
            package = cached.package
    root = cache / package
    stamp = root / ".complete"
    if stamp.is_file():
        kernel = DebianKernel(package, stamp.read_text().strip(), root)
    else:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache, prefix=".dl-") as tmp:
            tmpdir = Path(tmp)
            log(f"guest: downloading {package} with apt-get")
            _run(["apt-get", "download", "-q", package], cwd=tmpdir, what="apt-get download")
            debs = sorted(tmpdir.glob("*.deb"))
            if len(debs) != 1:
                raise MvtoolError(f"apt-get download {package}: expected one .deb, got {len(debs)}")
            unpack = tmpdir / "root"
            log(f"guest: unpacking {debs[0].name}")
            _run(["dpkg-deb", "-x", str(debs[0]), str(unpack)], what="dpkg-deb -x")
            releases = sorted(p.name for p in (unpack / "lib" / "modules").iterdir())
            if len(releases) != 1:
                raise MvtoolError(f"{package}: expected one module tree, found {releases}")
            if root.exists():
                shutil.rmtree(root)
            unpack.rename(root)
        stamp.write_text(releases[0] + "\n")
        kernel = DebianKernel(package, releases[0], root)
    if not kernel.vmlinux.is_file():
        log("guest: extracting the uncompressed vmlinux from the bzImage")
        tmp_out = kernel.vmlinux.with_suffix(".tmp")
        tmp_out.write_bytes(extract_vmlinux(kernel.bzimage.read_bytes()))
        tmp_out.rename(kernel.vmlinux)
    return kernel


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The uncompressed ELF inside a bzImage (xz, zstd or gzip payload).

    Raises MvtoolError for anything that is not a bzImage with a recognised payload.
    """
    if len(bzimage) < 0x250 or bzimage[0x202:0x206] != b"HdrS":
        raise MvtoolError("not a bzImage (no 'HdrS' setup header signature)")
    version = struct.unpack_from("<H", bzimage, 0x206)[0]
    if version < 0x208:
        raise MvtoolError(f"bzImage boot protocol {version:#x} has no payload fields (< 2.08)")
    setup_sects = bzimage[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    payload = bzimage[start:start + payload_length]
    if len(payload) != payload_length or payload_length == 0:
        raise MvtoolError("bzImage payload lies outside the file")
    if payload.startswith(_XZ_MAGIC):
        dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        elf = dec.decompress(payload)
    elif payload.startswith(_ZSTD_MAGIC):
        elf = _zstd_decompress(payload)
    elif payload.startswith(_GZIP_MAGIC):
        elf = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
    elif payload.startswith(_ELF_MAGIC):
        elf = payload
    else:
        raise MvtoolError(f"bzImage payload compression not supported (magic {payload[:6].hex()})")
    if not elf.startswith(_ELF_MAGIC):
        raise MvtoolError("bzImage payload did not decompress to an ELF image")
    return elf


def _zstd_decompress(payload: bytes) -> bytes:
    # The kernel appends the decompressed size after the frame; zstd ignores trailing garbage
    # only when told, so cut the last 4 bytes.
    try:
        proc = subprocess.run(["zstd", "-d", "-c", "-q"], input=payload[:-4],
                              capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise MvtoolError("zstd-compressed bzImage: the zstd tool is required") from exc
    if proc.returncode != 0:
        raise MvtoolError("zstd could not decompress the bzImage payload")
    return proc.stdout


# --- Modules ---------------------------------------------------------------------------------


def read_modinfo(ko: bytes) -> dict[str, list[str]]:
    """The ``.modinfo`` section of an ELF64 kernel module as ``key -> [values]``."""
    if not ko.startswith(_ELF_MAGIC) or ko[4] != 2 or ko[5] != 1:
        raise MvtoolError("not a little-endian ELF64 kernel module")
    shoff = struct.unpack_from("<Q", ko, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _typ, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", ko, shoff + i * shentsize)
        return name, off, size

    _n, stroff, strsize = section(shstrndx)
    strtab = ko[stroff:stroff + strsize]
    info: dict[str, list[str]] = {}
    for i in range(shnum):
        name_off, off, size = section(i)
        name = strtab[name_off:strtab.index(b"\0", name_off)]
        if name != b".modinfo":
            continue
        for entry in ko[off:off + size].split(b"\0"):
            if b"=" in entry:
                key, _, value = entry.decode("utf-8", "replace").partition("=")
                info.setdefault(key, []).append(value)
    return info


def _canon(name: str) -> str:
    return name.replace("-", "_")


class ModuleIndex:
    """Loadable modules of a kernel tree, by name, with their ``depends=`` lists."""

    def __init__(self, modules_dir: Path):
        self.modules_dir = modules_dir
        self._paths: dict[str, Path] = {}
        for ko in sorted((modules_dir / "kernel").rglob("*.ko")):
            self._paths.setdefault(_canon(ko.name[:-3]), ko)
        self._deps: dict[str, list[str]] = {}

    def path(self, name: str) -> Path:
        """The ``.ko`` file of module ``name`` (``-`` and ``_`` are interchangeable)."""
        try:
            return self._paths[_canon(name)]
        except KeyError:
            raise MvtoolError(f"kernel module {name!r} not found under {self.modules_dir}") from None

    def depends(self, name: str) -> list[str]:
        key = _canon(name)
        if key not in self._deps:
            info = read_modinfo(self.path(key).read_bytes())
            deps = [d for v in info.get("depends", []) for d in v.split(",") if d]
            self._deps[key] = [_canon(d) for d in deps]
        return self._deps[key]

    def load_order(self, wanted: Iterable[str]) -> list[Path]:
        """``wanted`` plus their dependencies, each after everything it depends on.

        The requested order is kept where dependencies allow it.
        """
        order: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            key = _canon(name)
            if key in order:
                return
            if key in visiting:
                raise MvtoolError(f"kernel module dependency cycle through {key}")
            visiting.add(key)
            for dep in self.depends(key):
                visit(dep)
            visiting.discard(key)
            order.append(key)

        for name in wanted:
            visit(name)
        return [self.path(n) for n in order]
