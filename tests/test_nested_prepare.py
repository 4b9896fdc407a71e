"""What is built on the host before a nested run (the nested host sees the repository
read-only): byte-compiled modules, so that Python processes in L1 do not compile them again."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from mvtool.nested import compile_package


def test_compile_package_writes_bytecode_once(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "mod.py").write_text("VALUE = 41 + 1\n")
    assert compile_package(pkg)
    cached = Path(importlib.util.cache_from_source(str(pkg / "sub" / "mod.py")))
    assert cached.is_file()
    # the bytecode is what an import with bytecode writing disabled (as in L1) would accept
    stamp = cached.stat().st_mtime_ns
    assert compile_package(pkg)
    assert cached.stat().st_mtime_ns == stamp  # up to date: not rewritten
    sys.path.insert(0, str(tmp_path))
    try:
        spec = importlib.util.find_spec("pkg.sub.mod")
        assert spec is not None and spec.cached == str(cached)
    finally:
        sys.path.remove(str(tmp_path))


def test_compile_package_reports_a_syntax_error(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "bad.py").write_text("def broken(:\n")
    assert not compile_package(pkg)
