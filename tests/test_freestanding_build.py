"""The freestanding guest builder: flat binaries at the load address, cached, rebuilt on change."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
from mvtool.errors import MvtoolError
from mvtool.freestanding_build import SOURCE_DIR, build_freestanding, guest_names
from mvtool.vmm import platform

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("objcopy") is None,
                                reason="gcc and objcopy are needed to build freestanding guests")


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(SOURCE_DIR, src, ignore=shutil.ignore_patterns("*.md"))
    return src


def elf_entry(path: Path) -> int:
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2  # ELF64
    return struct.unpack_from("<Q", data, 24)[0]


def test_guests_are_listed_without_the_library():
    names = guest_names()
    assert "blktest" in names and "hello" in names
    assert "runtime" not in names and "virtio" not in names


def test_build_is_a_flat_binary_entered_at_the_load_address(sources, tmp_path):
    binary = build_freestanding("hello", source_dir=sources, cache_dir=tmp_path / "cache")
    elf = binary.with_suffix(".elf")
    assert elf_entry(elf) == platform.FREESTANDING_LOAD_ADDR
    # the flat image starts with _start: cld; mov $FREESTANDING_STACK_TOP, %rsp
    image = binary.read_bytes()
    assert image[0] == 0xFC
    assert image[1:4] == b"\x48\xc7\xc4"
    assert struct.unpack_from("<I", image, 4)[0] == platform.FREESTANDING_STACK_TOP
    assert b"HELLO " in image


def test_cache_hit_and_rebuild_on_change(sources, tmp_path):
    cache = tmp_path / "cache"
    first = build_freestanding("hello", source_dir=sources, cache_dir=cache)
    stamp = first.stat().st_mtime_ns
    assert build_freestanding("hello", source_dir=sources, cache_dir=cache) == first
    assert first.stat().st_mtime_ns == stamp
    hello = sources / "hello.c"
    hello.write_text(hello.read_text().replace('"freestanding"', '"rebuilt"'))
    second = build_freestanding("hello", source_dir=sources, cache_dir=cache)
    assert second != first
    assert b"rebuilt" in second.read_bytes()
    # a change to the shared runtime rebuilds too
    (sources / "runtime.h").write_text((sources / "runtime.h").read_text() + "\n")
    assert build_freestanding("hello", source_dir=sources, cache_dir=cache) != second


def test_unknown_guest_is_one_clear_error(tmp_path):
    with pytest.raises(MvtoolError, match="no freestanding guest named 'nope'.*blktest"):
        build_freestanding("nope", cache_dir=tmp_path)


def test_compile_error_is_one_clear_error(sources, tmp_path):
    (sources / "broken.c").write_text("int main(void) { return undefined_symbol; }\n")
    with pytest.raises(MvtoolError, match="compiling broken.c failed: .*undefined_symbol"):
        build_freestanding("broken", source_dir=sources, cache_dir=tmp_path / "cache")
