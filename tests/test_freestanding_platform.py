"""py/mvtool/guests/freestanding/platform.h and py/mvtool/vmm/platform.py describe the same platform."""

from __future__ import annotations

import re

from mvtool.freestanding_build import SOURCE_DIR
from mvtool.vmm import platform

_DEFINE = re.compile(r"^#define\s+([A-Z][A-Z0-9_]*)\s+(0[xX][0-9a-fA-F]+|\d+)\s*$")


def header_constants() -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (SOURCE_DIR / "platform.h").read_text().splitlines():
        m = _DEFINE.match(line.strip())
        if m:
            out[m.group(1)] = int(m.group(2), 0)
    return out


def python_constants() -> dict[str, int]:
    return {name: value for name, value in vars(platform).items()
            if name.isupper() and isinstance(value, int)}


def test_platform_header_mirrors_platform_py():
    header, python = header_constants(), python_constants()
    assert python, "platform.py defines no constants?"
    assert sorted(set(python) - set(header)) == [], "missing in platform.h"
    assert sorted(set(header) - set(python)) == [], "platform.h has constants platform.py lacks"
    assert {k: hex(v) for k, v in header.items()} == {k: hex(v) for k, v in python.items()}


def test_every_define_in_the_header_is_parsed():
    """A #define the parser above skips would escape the comparison."""
    text = (SOURCE_DIR / "platform.h").read_text()
    defines = [line for line in text.splitlines() if line.startswith("#define ")]
    guard = [line for line in defines if line.split()[1].endswith("_H")]
    assert len(header_constants()) == len(defines) - len(guard)
