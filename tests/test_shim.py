"""The C shim: bounds checks (C unit test under ASan+UBSan), cffi build, guest memory."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kvm_util import KVM_DEVICE, needs_kvm
from mvtool.paths import SHIM_DIR

sys.path.insert(0, str(SHIM_DIR))
from build_shim import C_SOURCES, HEADERS

sys.path.remove(str(SHIM_DIR))

CFLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror"]
SANITIZE = ["-g", "-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
            "-fno-omit-frame-pointer"]


def _cc() -> str:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    return cc


def test_shim_compiles_warning_free(tmp_path: Path) -> None:
    for name in C_SOURCES:
        proc = subprocess.run([_cc(), *CFLAGS, "-O2", "-c", str(SHIM_DIR / name),
                               "-o", str(tmp_path / (name + ".o"))], capture_output=True,
                              text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""


def test_c_unit_tests_under_sanitizers(tmp_path: Path) -> None:
    exe = tmp_path / "test_mvshim"
    proc = subprocess.run([_cc(), *CFLAGS, *SANITIZE, f"-I{SHIM_DIR}",
                           str(SHIM_DIR / "tests" / "test_mvshim.c"),
                           *[str(SHIM_DIR / name) for name in C_SOURCES],
                           "-o", str(exe)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    run = subprocess.run([str(exe), KVM_DEVICE], capture_output=True, text=True, env=env,
                         check=False, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "runtime error" not in run.stderr
    assert run.stdout.startswith("OK range checks")


def test_sanitizer_driver_reports_a_broken_check(tmp_path: Path) -> None:
    """The C driver can fail: with the overflow guard removed from mv_range_check it must."""
    src = (SHIM_DIR / "mvbounds.c").read_text()
    guarded = "    if (len > mem_size - gpa)\n        return -MV_EFAULT;\n"
    assert guarded in src
    for name in C_SOURCES + HEADERS:
        (tmp_path / name).write_text((SHIM_DIR / name).read_text())
    mutant = tmp_path / "mvbounds.c"
    mutant.write_text(src.replace(guarded,
                                  "    if (gpa + len > mem_size)\n        return -MV_EFAULT;\n"))
    exe = tmp_path / "test_mutant"
    proc = subprocess.run([_cc(), *CFLAGS, f"-I{tmp_path}",
                           str(SHIM_DIR / "tests" / "test_mvshim.c"),
                           *[str(tmp_path / name) for name in C_SOURCES],
                           "-o", str(exe)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(exe), "/nonexistent-kvm"], capture_output=True, text=True,
                         check=False)
    assert run.returncode != 0
    assert "FAIL" in run.stdout


def test_range_check_from_python() -> None:
    from mvtool.kvm_shim import load

    lib = load().lib
    size = 1 << 20
    assert lib.mv_range_check(size, 0, size) == 0
    assert lib.mv_range_check(size, size, 0) == 0
    assert lib.mv_range_check(size, size - 4, 8) == -errno.EFAULT
    assert lib.mv_range_check(size, 16, 2**64 - 8) == -errno.EFAULT
    assert lib.mv_range_check(size, 2**64 - 1, 2) == -errno.EFAULT


def test_installed_extension_is_importable() -> None:
    """The cffi extension built at install time (setup.py cffi_modules) loads in a fresh
    interpreter and exposes the shim's functions."""
    code = ("from mvtool.kvm_shim import load; m = load(); "
            "print(m.__name__, hasattr(m.lib, 'mv_vcpu_run'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["mvtool._mvshim", "True"]


def test_missing_kvm_device_is_one_line_error(tmp_path: Path) -> None:
    from mvtool.vmm.kvm import KvmError, Vm

    with pytest.raises(KvmError) as info:
        Vm(str(tmp_path / "no-kvm"))
    assert info.value.errno == errno.ENOENT
    assert "\n" not in str(info.value)
    assert "no-kvm" in str(info.value)


def test_non_kvm_device_is_rejected(tmp_path: Path) -> None:
    from mvtool.vmm.kvm import KvmError, Vm

    with pytest.raises(KvmError, match="KVM_GET_API_VERSION"):
        Vm("/dev/null")


@needs_kvm
class TestGuestMemory:
    SIZE = 2 << 20

    @pytest.fixture
    def vm(self):  # type: ignore[no-untyped-def]
        from mvtool.vmm.kvm import Vm

        vm = Vm(KVM_DEVICE)
        vm.set_memory(self.SIZE)
        yield vm
        vm.close()

    def test_round_trip_and_widths(self, vm) -> None:  # type: ignore[no-untyped-def]
        mem = vm.memory
        mem.write(0x1000, bytes(range(16)))
        assert mem.read(0x1000, 16) == bytes(range(16))
        assert mem.read_u16(0x1001) == 0x0201
        assert mem.read_u32(0x1004) == 0x07060504
        assert mem.read_u64(0x1008) == 0x0F0E0D0C0B0A0908
        mem.write_u64(self.SIZE - 8, 0x1122334455667788)
        assert mem.read_u64(self.SIZE - 8) == 0x1122334455667788
        assert mem.read(self.SIZE, 0) == b""

    @pytest.mark.parametrize(("gpa", "length"), [
        (SIZE - 1, 2), (SIZE, 1), (SIZE + 4096, 4), (2**64 - 2, 4), (8, 2**64 - 4), (-1, 1),
    ])
    def test_out_of_ram_raises(self, vm, gpa: int, length: int) -> None:  # type: ignore[no-untyped-def]
        from mvtool.vmm.kvm import GuestMemoryError

        mem = vm.memory
        with pytest.raises(GuestMemoryError):
            if length < 2**32:
                mem.read(gpa, length)
            else:
                mem.pread_from(0, gpa, length, 0)
        with pytest.raises(GuestMemoryError):
            mem.write(gpa, b"\xff" * min(length, 16)) if length < 16 else \
                mem.pwrite_to(1, gpa, length, 0)
        assert not mem.contains(gpa, length)

    def test_failed_write_changes_nothing(self, vm) -> None:  # type: ignore[no-untyped-def]
        from mvtool.vmm.kvm import GuestMemoryError

        mem = vm.memory
        mem.write(self.SIZE - 4, b"\x11\x22\x33\x44")
        with pytest.raises(GuestMemoryError):
            mem.write(self.SIZE - 4, b"\xee" * 8)
        assert mem.read(self.SIZE - 4, 4) == b"\x11\x22\x33\x44"

    def test_file_copies_bypass_python(self, vm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        from mvtool.vmm.kvm import GuestMemoryError

        mem = vm.memory
        payload = os.urandom(3 * 4096 + 100)
        f = tmp_path / "disk.img"
        f.write_bytes(payload)
        fd = os.open(f, os.O_RDWR)
        try:
            assert mem.pread_from(fd, 0x10000, len(payload), 0) == len(payload)
            assert mem.read(0x10000, len(payload)) == payload
            assert mem.pread_from(fd, 0x40000, 4096, len(payload) - 10) == 10
            mem.write(0x50000, b"Z" * 512)
            assert mem.pwrite_to(fd, 0x50000, 512, 4096) == 512
            with pytest.raises(GuestMemoryError):
                mem.pread_from(fd, self.SIZE - 100, 4096, 0)
        finally:
            os.close(fd)
        data = f.read_bytes()
        assert data[4096:4608] == b"Z" * 512
        assert data[:4096] == payload[:4096]

    def test_scatter_gather_file_copies(self, vm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
        from mvtool.vmm.kvm import GuestMemoryError

        mem = vm.memory
        payload = os.urandom(8192)
        f = tmp_path / "disk.img"
        f.write_bytes(payload)
        fd = os.open(f, os.O_RDWR)
        try:
            # three ranges, out of address order, one empty: consecutive file bytes, in order
            segs = [0x30000, 1000, 0x10000, 0, 0x20000, 3096]
            assert mem.preadv_from(fd, segs, 100) == 4096
            assert mem.read(0x30000, 1000) == payload[100:1100]
            assert mem.read(0x20000, 3096) == payload[1100:4196]
            # short at the end of the file
            assert mem.preadv_from(fd, [0x40000, 8, 0x41000, 4096], 8192 - 20) == 20
            # one range outside RAM: refused before anything moves
            mem.write(0x50000, bytes(64))
            with pytest.raises(GuestMemoryError):
                mem.preadv_from(fd, [0x50000, 64, self.SIZE - 8, 16], 0)
            assert mem.read(0x50000, 64) == bytes(64)
            with pytest.raises(GuestMemoryError):
                mem.pwritev_to(fd, [-4096, 16], 0)
            # gather back into the file
            assert mem.pwritev_to(fd, segs, 4096) == 4096
        finally:
            os.close(fd)
        assert f.read_bytes()[4096:8192] == payload[100:4196]

    def test_read_desc_unpacks_a_descriptor(self, vm) -> None:  # type: ignore[no-untyped-def]
        import struct

        from mvtool.vmm.kvm import GuestMemoryError

        mem = vm.memory
        mem.write(0x6000, struct.pack("<QIHH", 0x1234_5678_9ABC, 0x200, 3, 7))
        assert mem.read_desc(0x6000) == (0x1234_5678_9ABC, 0x200, 3, 7)
        with pytest.raises(GuestMemoryError):
            mem.read_desc(self.SIZE - 8)

    def test_supported_cpuid_has_vendor_leaf(self, vm) -> None:  # type: ignore[no-untyped-def]
        table = vm.supported_cpuid()
        leaf0 = [e for e in table if e.function == 0]
        assert leaf0, "no CPUID leaf 0"
        vendor = b"".join(r.to_bytes(4, "little") for r in (leaf0[0].ebx, leaf0[0].edx,
                                                           leaf0[0].ecx))
        assert vendor in (b"GenuineIntel", b"AuthenticAMD", b"HygonGenuine", b"CentaurHauls")


def test_fallback_build_matches_sources(tmp_path: Path) -> None:
    """The first-import fallback (used when the installed extension is older than the C
    sources) builds a working extension whose digest names the current sources."""
    sys.path.insert(0, str(SHIM_DIR))
    try:
        import build_shim
    finally:
        sys.path.remove(str(SHIM_DIR))
    from mvtool import kvm_shim

    lib_path = build_shim.build_inplace(tmp_path / "shim")
    previous = sys.modules.get("mvtool._mvshim")
    module = kvm_shim._load_from(lib_path)
    try:
        assert kvm_shim._built_digest(module) == build_shim.source_digest()
        assert module.lib.mv_range_check(100, 99, 2) == -errno.EFAULT
    finally:
        if previous is not None:
            sys.modules["mvtool._mvshim"] = previous
        else:
            sys.modules.pop("mvtool._mvshim", None)


def test_loader_digests_the_same_sources_as_the_build() -> None:
    """mvtool.kvm_shim keeps its own copy of the source list (importing build_shim would parse
    the cdef with pycparser on every start-up); the copy must name what the build compiles, or
    an installed extension would never be recognised as current."""
    sys.path.insert(0, str(SHIM_DIR))
    try:
        import build_shim
    finally:
        sys.path.remove(str(SHIM_DIR))
    from mvtool import kvm_shim

    assert kvm_shim._SOURCES == build_shim.C_SOURCES + build_shim.HEADERS
    assert kvm_shim._source_digest() == build_shim.source_digest()
