"""Locations of the project's files, resolved from the repository root."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The repository root: ``$MVTOOL_ROOT`` if set, else found from this file's location."""
    env = os.environ.get("MVTOOL_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


ROOT = repo_root()
LEAN_DIR = ROOT / "MicroVMM"
SPEC_DIR = ROOT / "spec"
SHIM_DIR = ROOT / "shim"
TESTS_DIR = ROOT / "tests"
CACHE_DIR = Path(os.environ.get("MVTOOL_CACHE", ROOT / "_cache"))
#: Sources of the guests: freestanding test and attack guests (C), the Linux guest's scripts.
GUESTS_DIR = Path(__file__).resolve().parent / "guests"
