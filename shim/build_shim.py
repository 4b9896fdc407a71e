"""cffi (API mode) build of the mvshim C shim into the extension ``mvtool._mvshim``.

Used three ways: by setuptools (``cffi_modules=["shim/build_shim.py:ffibuilder"]`` in
setup.py) at install time, by :func:`build_inplace` as a fallback at first import, and by the
tests for a sanitizer-instrumented build.
"""

from __future__ import annotations

import re
from pathlib import Path

from cffi import FFI

SHIM_DIR = Path(__file__).resolve().parent
HEADER = SHIM_DIR / "mvshim.h"
SOURCE = SHIM_DIR / "mvshim.c"
MODULE = "mvtool._mvshim"
CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-O2"]


def cdef_text() -> str:
    """The declarations between CDEF-BEGIN and CDEF-END in mvshim.h."""
    text = HEADER.read_text()
    match = re.search(r"/\* CDEF-BEGIN \*/(.*)/\* CDEF-END \*/", text, re.DOTALL)
    if match is None:
        raise RuntimeError(f"{HEADER}: CDEF-BEGIN/CDEF-END markers missing")
    return match.group(1)


def make_builder(module: str = MODULE, extra_cflags: list[str] | None = None,
                 extra_ldflags: list[str] | None = None, relative: bool = False) -> FFI:
    """An FFI builder for the shim; ``relative`` uses paths relative to the repository root
    (setuptools rejects absolute source paths in some versions)."""
    ffi = FFI()
    ffi.cdef(cdef_text())
    if relative:
        sources = [str(SOURCE.relative_to(SHIM_DIR.parent))]
        include = [str(SHIM_DIR.relative_to(SHIM_DIR.parent))]
    else:
        sources, include = [str(SOURCE)], [str(SHIM_DIR)]
    ffi.set_source(
        module,
        '#include "mvshim.h"',
        sources=sources,
        include_dirs=include,
        extra_compile_args=CFLAGS + (extra_cflags or []),
        extra_link_args=extra_ldflags or [],
    )
    return ffi


def build_inplace(target_dir: Path, module: str = MODULE) -> Path:
    """Compile the extension into ``target_dir`` and return the path of the built library."""
    target_dir.mkdir(parents=True, exist_ok=True)
    ffi = make_builder(module)
    return Path(ffi.compile(tmpdir=str(target_dir), verbose=False))


ffibuilder = make_builder(relative=True)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
