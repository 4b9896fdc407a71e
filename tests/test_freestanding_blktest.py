"""Freestanding guests on the host's /dev/kvm: the runtime, and blktest driving the virtio-blk
device through the verified model (full handshake, write/read round trip, GET_ID, FLUSH)."""

from __future__ import annotations

import importlib
import os
import re
import shutil
from pathlib import Path

import pytest
from mvtool.vmm import platform

KVM = "/dev/kvm"
SECTORS = 96

pytestmark = [
    pytest.mark.kvm,
    pytest.mark.skipif(not os.access(KVM, os.R_OK | os.W_OK), reason=f"{KVM} is not available"),
    pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed to build the guests"),
]


@pytest.fixture(scope="module")
def model():
    try:
        return importlib.import_module("mvtool._extracted.model")
    except ImportError:
        pytest.skip("the extracted model py/mvtool/_extracted/model.py is not generated "
                    "(python -m mvtool extract)")


def pattern(n: int) -> bytes:
    """blk_pattern() of py/mvtool/guests/freestanding/blktest.c."""
    return bytes((i * 31 + 7 + (i >> 8)) & 0xFF for i in range(n))


def run_blktest(model, disk: Path, *, readonly: bool = False):
    from mvtool.freestanding_build import build_freestanding
    from mvtool.vmm.freestanding import run_freestanding
    from mvtool.vmm.virtio_blk import VirtioBlkBackend
    from mvtool.vmm.virtio_mmio import VirtioMmioDevice

    devices: list[VirtioMmioDevice] = []

    def setup(machine) -> None:
        backend = VirtioBlkBackend(disk, readonly=readonly)
        dev = VirtioMmioDevice(machine.memory, machine.irq_line(platform.VIRTIO_IRQ_BASE),
                               backend, model=model, ram_size=machine.memory.size)
        machine.attach_mmio(platform.VIRTIO_MMIO_BASE, platform.VIRTIO_MMIO_SIZE, dev,
                            "virtio-blk")
        devices.append(dev)

    run = run_freestanding(build_freestanding("blktest"), setup=setup, timeout=60)
    devices[0].backend.close()
    return run, devices[0]


def steps(output: bytes) -> dict[str, tuple[str, dict[str, str]]]:
    """BLKTEST lines as {step: (verdict, {key: value})}."""
    out = {}
    for line in output.decode(errors="replace").splitlines():
        m = re.fullmatch(r"BLKTEST (\w+) (ok|FAIL|pass|fail)(.*)", line.strip())
        if m:
            out[m.group(1)] = (m.group(2), dict(re.findall(r"(\w+)=(\S+)", m.group(3))))
    return out


def test_hello_guest_runs():
    from mvtool.freestanding_build import build_freestanding
    from mvtool.vmm.freestanding import run_freestanding

    run = run_freestanding(build_freestanding("hello"), timeout=30)
    assert run.output == b"HELLO freestanding\n"
    assert run.exit_code == 0


def test_blktest_passes_with_the_verified_model(model, tmp_path):
    disk = tmp_path / "disk.img"
    original = os.urandom(SECTORS * 512)
    disk.write_bytes(original)
    run, dev = run_blktest(model, disk)
    result = steps(run.output)
    assert result.get("RESULT", ("?",))[0] == "pass", run.output.decode(errors="replace")
    assert run.exit_code == 0
    expected = ["probe", "features", "queue", "driver_ok", "capacity", "write", "read", "range",
                "get_id", "flush", "interrupt", "status"]
    assert [s for s in result if s != "RESULT"] == expected
    assert all(verdict == "ok" for verdict, _ in result.values() if verdict != "pass")
    assert result["capacity"][1]["sectors"] == str(SECTORS)
    assert result["get_id"][1]["id"] == "microvmm-blk"
    # the pattern is in the backing file at the sector the guest reported, and nowhere else
    sector = int(result["write"][1]["sector"])
    assert sector == SECTORS // 2
    data = disk.read_bytes()
    at = sector * 512
    assert data[at:at + 1024] == pattern(1024)
    assert data[:at] == original[:at] and data[at + 1024:] == original[at + 1024:]
    assert dev.monitor.violation_count == 0 and dev.device_errors == []
    assert dev.requests == 5 and dev.activations == 1


def test_blktest_on_a_readonly_disk_gets_ioerr_and_the_vmm_keeps_running(model, tmp_path):
    disk = tmp_path / "disk.img"
    original = bytes(SECTORS * 512)
    disk.write_bytes(original)
    run, dev = run_blktest(model, disk, readonly=True)
    result = steps(run.output)
    assert result["features"][1]["ro"] == "1"
    assert result["write"] == ("FAIL", {"sector": str(SECTORS // 2), "bytes": "1024",
                                        "status": "1"})  # VIRTIO_BLK_S_IOERR
    # every later step still ran against a live device, and the guest ended the run itself
    for step in ("range", "get_id", "flush", "interrupt", "status"):
        assert result[step][0] == "ok", step
    assert result["RESULT"][0] == "fail" and run.exit_code == 1
    assert run.result.kind.value == "debug-exit"
    assert disk.read_bytes() == original
    assert dev.device_errors == [] and dev.monitor.violation_count == 0
