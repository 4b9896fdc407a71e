"""cffi (API mode) build of the mvshim C shim into the extension ``mvtool._mvshim``.

Used three ways: by setuptools (``cffi_modules=["shim/build_shim.py:ffibuilder"]`` in
setup.py) at install time, by :func:`build_inplace` as a fallback at first import, and by the
tests for a sanitizer-instrumented build.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path

from cffi import FFI

SHIM_DIR = Path(__file__).resolve().parent
HEADER = SHIM_DIR / "mvshim.h"
SOURCE = SHIM_DIR / "mvshim.c"
#: Every C file compiled into the extension, and every header they include.
C_SOURCES = ("mvshim.c", "mvbounds.c", "lean_abi.c")
HEADERS = ("mvshim.h", "mvbounds.h")
MODULE = "mvtool._mvshim"
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"]


def cdef_text() -> str:
    """The declarations between CDEF-BEGIN and CDEF-END in mvshim.h."""
    text = HEADER.read_text()
    match = re.search(r"/\* CDEF-BEGIN \*/(.*)/\* CDEF-END \*/", text, re.DOTALL)
    if match is None:
        raise RuntimeError(f"{HEADER}: CDEF-BEGIN/CDEF-END markers missing")
    return match.group(1)


def source_digest(shim_dir: Path = SHIM_DIR) -> str:
    """Identity of the C sources, compiled into the extension (``mv_shim_digest()``) so a
    loader can tell a stale build from a current one. mvtool.kvm_shim computes the same."""
    digest = hashlib.sha256()
    for name in C_SOURCES + HEADERS:
        digest.update((shim_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def make_builder(module: str = MODULE, extra_cflags: list[str] | None = None,
                 extra_ldflags: list[str] | None = None, relative: bool = False,
                 source_dir: str | None = None) -> FFI:
    """An FFI builder for the shim. ``relative`` uses paths relative to the repository root
    (what setuptools expects); ``source_dir`` names a directory, relative to the build
    directory, holding copies of the C sources (what :func:`build_inplace` uses)."""
    ffi = FFI()
    ffi.cdef(cdef_text() + "\nconst char *mv_shim_digest(void);\n")
    if source_dir is not None:
        sources, include = [f"{source_dir}/{name}" for name in C_SOURCES], [source_dir]
    elif relative:
        rel = SHIM_DIR.relative_to(SHIM_DIR.parent)
        sources = [str(rel / name) for name in C_SOURCES]
        include = [str(rel)]
    else:
        sources, include = [str(SHIM_DIR / name) for name in C_SOURCES], [str(SHIM_DIR)]
    ffi.set_source(
        module,
        '#include "mvshim.h"\n'
        f'const char *mv_shim_digest(void) {{ return "{source_digest()}"; }}\n',
        sources=sources,
        include_dirs=include,
        extra_compile_args=CFLAGS + (extra_cflags or []),
        extra_link_args=extra_ldflags or [],
    )
    return ffi


def build_inplace(target_dir: Path, module: str = MODULE) -> Path:
    """Compile the extension into ``target_dir`` and return the path of the built library.

    The build happens in a fresh temporary directory that is renamed into place, so
    concurrent builders never see each other's half-written files."""
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=target_dir.name + ".", dir=target_dir.parent))
    try:
        (work / "src").mkdir()
        for name in C_SOURCES + HEADERS:
            shutil.copy2(SHIM_DIR / name, work / "src" / name)
        # cffi compiles with the build directory as working directory: relative paths keep
        # object files inside it.
        ffi = make_builder(module, source_dir="src")
        built = Path(ffi.compile(tmpdir=str(work), verbose=False))
        rel = built.relative_to(work)
        try:
            work.rename(target_dir)
        except OSError:
            if not (target_dir / rel).is_file():  # another builder won the race
                raise
            shutil.rmtree(work, ignore_errors=True)
        return target_dir / rel
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


ffibuilder = make_builder(relative=True)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
