"""The C side of the FFI axioms in MicroVMM/FFI/Shim.lean (spec/ffi_contract.yaml).

`rangeCheck_ok_iff` is discharged twice: Frama-C/WP proves the ACSL contract of
`mv_range_check` on the shim's own source, and a boundary test runs the compiled function.
A mutant of the C function (a guard removed) must make the WP proof fail, so the proof can fail.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from kvm_util import KVM_DEVICE, needs_kvm
from mvtool import paths

SHIM = paths.SHIM_DIR
U64 = (1 << 64) - 1


def _run_wp(workdir: Path) -> tuple[int, int, str]:
    """Run Frama-C/WP with Z3 (through Why3) on workdir/mvbounds.c; return (proved, total, log)."""
    env = {"WHY3CONFIG": str(workdir / "why3.conf"), "PATH": "/usr/bin:/bin"}
    subprocess.run(["why3", "config", "detect"], env=env, cwd=workdir, check=True,
                   capture_output=True, timeout=120)
    out = subprocess.run(["frama-c", "-wp", "-wp-rte", "-wp-prover", "z3", "mvbounds.c"],
                         env=env, cwd=workdir, capture_output=True, text=True, timeout=600,
                         check=False)
    log = out.stdout + out.stderr
    m = re.search(r"Proved goals:\s+(\d+)\s*/\s*(\d+)", log)
    assert m, f"no WP summary in Frama-C output:\n{log}"
    return int(m.group(1)), int(m.group(2)), log


needs_wp = pytest.mark.skipif(
    not (shutil.which("frama-c") and shutil.which("why3") and shutil.which("z3")),
    reason="Frama-C/WP, Why3 or Z3 not installed (make setup installs frama-c-base, why3, z3)")


@needs_wp
def test_range_check_wp_proof(tmp_path: Path) -> None:
    for name in ("mvbounds.c", "mvbounds.h"):
        shutil.copy(SHIM / name, tmp_path / name)
    proved, total, log = _run_wp(tmp_path)
    assert "ensures_in_ram" in log, log
    assert total >= 3 and proved == total, log


@needs_wp
def test_range_check_wp_refutes_mutant(tmp_path: Path) -> None:
    source = (SHIM / "mvbounds.c").read_text()
    guard = "    if (gpa > mem_size)\n        return -MV_EFAULT;\n"
    assert guard in source, "the mutant's target text is gone from mvbounds.c"
    (tmp_path / "mvbounds.c").write_text(source.replace(guard, ""))
    shutil.copy(SHIM / "mvbounds.h", tmp_path / "mvbounds.h")
    proved, total, log = _run_wp(tmp_path)
    assert proved < total, f"WP proved a mutant without the gpa guard:\n{log}"


def _shim():
    from mvtool import kvm_shim

    module = kvm_shim.load()
    return module.ffi, module.lib


def test_range_check_boundaries() -> None:
    _, lib = _shim()
    cases = [
        (4096, 0, 4096, True), (4096, 0, 4097, False), (4096, 4096, 0, True),
        (4096, 4097, 0, False), (4096, 4095, 1, True), (4096, 4095, 2, False),
        (4096, U64, 2, False), (4096, 2, U64, False), (U64, U64, 0, True),
        (U64, 1, U64, False), (0, 0, 0, True), (0, 0, 1, False),
    ]
    for mem, gpa, length, inside in cases:
        rc = lib.mv_range_check(mem, gpa, length)
        assert (rc == 0) == inside, (mem, gpa, length, rc)
        assert (gpa + length <= mem) == inside  # the axiom's mathematical statement
        if not inside:
            assert rc == -14


@needs_kvm
def test_lean_abi_accessors_bounds() -> None:
    """memReadU32_ok_iff, memReadU32_fail_zero, memWriteU32_ok_iff: the Lean-ABI accessors
    succeed exactly for four bytes inside RAM, return no data on failure, and a write is read
    back."""
    ffi, lib = _shim()
    msg = ffi.new("char[256]")
    out = ffi.new("mv_vm **")
    assert lib.mv_vm_create(KVM_DEVICE.encode(), out, msg, 256) == 0, ffi.string(msg)
    vm = out[0]
    try:
        size = 1 << 20
        assert lib.mv_vm_set_memory(vm, size, msg, 256) == 0, ffi.string(msg)
        handle = int(ffi.cast("uintptr_t", vm))
        assert lib.mv_lean_mem_size(handle) == size
        for gpa in (0, 4, size - 5, size - 4, size - 3, size - 1, size, size + 4, U64 - 2, U64):
            inside = gpa + 4 <= size
            wrote = lib.mv_lean_mem_write_u32(handle, gpa, 0xA5C3_0F1E)
            assert (wrote == 1) == inside, hex(gpa)
            got = lib.mv_lean_mem_read_u32(handle, gpa)
            assert ((got >> 32) == 1) == inside, hex(gpa)
            if inside:
                assert got & 0xFFFF_FFFF == 0xA5C3_0F1E
            else:
                assert got == 0
        assert lib.mv_lean_mem_read_u32(0, 0) == 0  # no VM: fails, returns nothing
    finally:
        lib.mv_vm_destroy(vm)
