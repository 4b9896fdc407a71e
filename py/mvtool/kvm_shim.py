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

_SOURCES = ("mvshim.c", "mvshim.h", "build_shim.py")


def _source_digest() -> str | None:
    digest = hashlib.sha256()
    for name in _SOURCES:
        path = SHIM_DIR / name
        if not path.is_file():
            return None
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _installed_is_current(module: ModuleType) -> bool:
    lib_path = Path(module.__file__ or "")
    try:
        built = lib_path.stat().st_mtime
        return all((SHIM_DIR / n).stat().st_mtime <= built for n in _SOURCES)
    except OSError:
        return True  # installed without sources alongside: trust the installed build


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
    existing = sorted(target.glob("_mvshim*.so")) if target.is_dir() else []
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
    """The shim extension module (``ffi`` and ``lib``), built on demand if needed."""
    try:
        from mvtool import _mvshim
    except ImportError:
        _mvshim = None
    if _mvshim is not None and _installed_is_current(_mvshim):
        return _mvshim
    digest = _source_digest()
    if digest is None:
        if _mvshim is not None:
            return _mvshim
        raise MvtoolError("the C shim is not built and its sources are missing; "
                          "reinstall with `pip install -e .`")
    return _build_cached(digest)
