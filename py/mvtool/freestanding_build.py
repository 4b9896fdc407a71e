"""Build the freestanding test and attack guests (py/mvtool/guests/freestanding/) into flat binaries.

Each guest is one C file ``<name>.c`` linked with the runtime library (start code, serial and
exit, the virtio-mmio driver) into a 64-bit flat binary loaded and entered at
``platform.FREESTANDING_LOAD_ADDR`` (the linker script takes the address from ``platform.h``).
The host's gcc and binutils do the work; results are cached under
``CACHE_DIR/freestanding/`` keyed by a digest of every source file, the flags and the compiler
version, so a guest is rebuilt exactly when something it is built from changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from mvtool.errors import MvtoolError
from mvtool.paths import CACHE_DIR, GUESTS_DIR

SOURCE_DIR = GUESTS_DIR / "freestanding"
#: Sources linked into every guest.
LIBRARY = ("start.S", "runtime.c", "virtio.c")
LINKER_SCRIPT = "link.ld.S"
_SOURCE_SUFFIXES = (".c", ".h", ".S")

#: 64-bit, no libc, no SSE (the entry state leaves CR4.OSFXSR clear), no red zone, fixed
#: addresses; -fno-tree-loop-distribute-patterns stops gcc turning memset's loop into a call to
#: memset.
CFLAGS = (
    "-m64", "-O2", "-std=gnu11", "-ffreestanding", "-nostdlib", "-fno-pic", "-fno-pie",
    "-mno-red-zone", "-mgeneral-regs-only", "-mcmodel=small", "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables", "-fno-tree-loop-distribute-patterns", "-fcf-protection=none",
    "-Wall", "-Wextra",
)
LDFLAGS = ("-m64", "-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none",
           "-Wl,-z,noexecstack", "-Wl,--no-warn-rwx-segments")


def _compiler() -> str:
    cc = os.environ.get("CC", "gcc")
    path = shutil.which(cc)
    if path is None:
        raise MvtoolError(f"C compiler {cc!r} not found; install gcc (Debian: apt-get install "
                          "gcc) to build freestanding guests")
    if shutil.which("objcopy") is None:
        raise MvtoolError("objcopy not found; install binutils to build freestanding guests")
    return path


@cache
def _compiler_version(cc: str) -> str:
    out = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else cc


def guest_names(source_dir: Path = SOURCE_DIR) -> list[str]:
    """The guests that can be built: every ``<name>.c`` that is not part of the library."""
    return sorted(p.stem for p in source_dir.glob("*.c") if p.name not in LIBRARY)


def source_digest(source_dir: Path = SOURCE_DIR, cc: str | None = None) -> str:
    """Digest of every source file, the flags and the compiler version."""
    digest = hashlib.sha256()
    for path in sorted(source_dir.iterdir()):
        if path.is_file() and (path.suffix in _SOURCE_SUFFIXES or path.name == LINKER_SCRIPT):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(" ".join(CFLAGS + LDFLAGS).encode())
    if cc is not None:
        digest.update(_compiler_version(cc).encode())
    return digest.hexdigest()[:16]


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        # gcc and ld name the problem on a line with "error:"; fall back to the first line
        first = next((line for line in detail if "error:" in line), detail[0] if detail else "")
        raise MvtoolError(f"{what} failed: {first.strip() or f'exit status {proc.returncode}'}")


def _build(name: str, source_dir: Path, cc: str, out_dir: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix=f"fs-{name}-") as tmp:
        work = Path(tmp)
        script = work / "link.ld"
        _run([cc, "-E", "-P", "-undef", "-x", "assembler-with-cpp", f"-I{source_dir}",
              str(source_dir / LINKER_SCRIPT), "-o", str(script)], "preprocessing link.ld.S")
        objects = []
        for src in (*LIBRARY, f"{name}.c"):
            obj = work / (Path(src).stem + ".o")
            _run([cc, *CFLAGS, f"-I{source_dir}", "-c", str(source_dir / src), "-o", str(obj)],
                 f"compiling {src}")
            objects.append(str(obj))
        elf = work / f"{name}.elf"
        _run([cc, *LDFLAGS, f"-Wl,-T,{script}", "-o", str(elf), *objects], f"linking {name}")
        binary = work / f"{name}.bin"
        _run(["objcopy", "-O", "binary", str(elf), str(binary)], f"objcopy {name}")
        out_dir.mkdir(parents=True, exist_ok=True)
        for suffix, src_path in ((".elf", elf), (".bin", binary)):
            dest = out_dir / f"{name}{suffix}"
            tmp_dest = dest.with_suffix(suffix + ".tmp")
            shutil.copyfile(src_path, tmp_dest)
            tmp_dest.replace(dest)
    return out_dir / f"{name}.bin"


def build_freestanding(name: str, *, source_dir: Path = SOURCE_DIR,
                       cache_dir: Path | None = None) -> Path:
    """Path of the flat binary of guest ``name`` (``py/mvtool/guests/freestanding/<name>.c``), built if
    it is not cached for the current sources. The ELF with symbols lies next to it."""
    if name not in guest_names(source_dir):
        known = ", ".join(guest_names(source_dir)) or "none"
        raise MvtoolError(f"no freestanding guest named {name!r} (available: {known})")
    cc = _compiler()
    out_dir = (cache_dir or CACHE_DIR / "freestanding") / source_digest(source_dir, cc)
    binary = out_dir / f"{name}.bin"
    if binary.is_file():
        return binary
    return _build(name, source_dir, cc, out_dir)
