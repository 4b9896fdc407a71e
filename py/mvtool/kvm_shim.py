"""Loader for the compiled C shim (``mvtool._mvshim``, built by cffi from shim/mvshim.c).

The extension is normally built at install time (setup.py's ``cffi_modules``). When it is
missing or older than the C sources (a source checkout edited after ``pip install -e .``), it is
compiled once into ``CACHE_DIR/shim/<hash of the sources>/`` and loaded from there.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

from mvtool.errors import MvtoolError
from mvtool.paths import CACHE_DIR, SHIM_DIR

#: The files of shim/build_shim.py C_SOURCES + HEADERS, in that order, copied rather than
#: imported: importing build_shim parses the cdef with pycparser, too slow for every start-up
#: (tests/test_shim.py checks the two agree).
_SOURCES = ("mvshim.c", "mvbounds.c", "lean_abi.c", "mvshim.h", "mvbounds.h")


def _source_digest() -> str | None:
    """sha256 of the C sources (first 16 hex digits), as shim/build_shim.py computes it."""
    digest = hashlib.sha256()
    for name in _SOURCES:
        path = SHIM_DIR / name
        if not path.is_file():
            return None
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _built_digest(module: ModuleType) -> str:
    try:
        return module.ffi.string(module.lib.mv_shim_digest()).decode()
    except AttributeError:
        return ""


def _load_from(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("mvtool._mvshim", path)
    if spec is None or spec.loader is None:
        raise MvtoolError(f"cannot load the C shim from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["mvtool._mvshim"] = module
    return module


def _build_cached(digest: str) -> ModuleType:
    target = CACHE_DIR / "shim" / digest
    existing = sorted(target.rglob("_mvshim*.so")) if target.is_dir() else []
    if existing:
        return _load_from(existing[0])
    sys.path.insert(0, str(SHIM_DIR))
    try:
        import build_shim
    finally:
        sys.path.remove(str(SHIM_DIR))
    try:
        built = build_shim.build_inplace(target)
    except Exception as exc:
        raise MvtoolError(f"cannot build the C shim ({type(exc).__name__}: {exc}); "
                          "is a C compiler installed?") from exc
    return _load_from(built)


@cache
def load() -> ModuleType:
    """The shim extension module (``ffi`` and ``lib``), built on demand if needed.

    The installed extension is used when its compiled-in source digest matches the C sources
    next to the package; otherwise (sources edited since the install) a cached build is used."""
    try:
        from mvtool import _mvshim
    except ImportError:
        _mvshim = None
    digest = _source_digest()
    if _mvshim is not None and (digest is None or _built_digest(_mvshim) == digest):
        return _mvshim
    if digest is None:
        raise MvtoolError("the C shim is not built and its sources are missing; "
                          "reinstall with `pip install -e .`")
    return _build_cached(digest)
