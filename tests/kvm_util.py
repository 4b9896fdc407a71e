"""Shared helpers for the KVM tests: skip reasons and test-time guest assembly."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

KVM_DEVICE = os.environ.get("MVTOOL_KVM_DEVICE", "/dev/kvm")


def kvm_unusable_reason() -> str | None:
    """Why the KVM tests cannot run here, or None if /dev/kvm works."""
    if not os.path.exists(KVM_DEVICE):
        return f"{KVM_DEVICE} does not exist"
    if not os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        return f"{KVM_DEVICE} is not accessible to this user"
    try:
        from mvtool.vmm.kvm import Vm
    except Exception as exc:  # noqa: BLE001 - report any loader failure as the skip reason
        return f"C shim unavailable: {exc}"
    try:
        Vm(KVM_DEVICE).close()
    except Exception as exc:  # noqa: BLE001
        return f"cannot create a VM on {KVM_DEVICE}: {exc}"
    return None


needs_kvm = pytest.mark.skipif(kvm_unusable_reason() is not None,
                               reason=str(kvm_unusable_reason()))


def assemble(source: str, tmp_path: Path, name: str = "guest") -> bytes:
    """Assemble NASM source (flat binary) in tmp_path; skip if nasm is missing."""
    nasm = shutil.which("nasm")
    if nasm is None:
        pytest.skip("nasm is not installed")
    src = tmp_path / f"{name}.asm"
    out = tmp_path / f"{name}.bin"
    src.write_text(source)
    proc = subprocess.run([nasm, "-f", "bin", "-o", str(out), str(src)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes()
