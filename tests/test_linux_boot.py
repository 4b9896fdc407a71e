"""Booting the default Linux guest end to end: marker, disk round trip, clean power-off.

* under QEMU's software emulation directly (checks the guest image itself, no KVM needed);
* with our VMM (``mvtool boot``) on real KVM inside the nested host, the disk round trip
  checked from the host side of the backing file.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mvtool.errors import MvtoolError
from mvtool.guests import protocol


@pytest.fixture
def guest():
    from mvtool.guests import default_guest

    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
    try:
        return default_guest()
    except MvtoolError as exc:
        pytest.skip(str(exc))


def _disk(tmp_path: Path, size: int) -> Path:
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(size)
    return disk


@pytest.mark.slow
def test_guest_image_boots_under_software_emulation(guest, tmp_path: Path) -> None:
    disk = _disk(tmp_path, protocol.READ_BENCH_BYTES + (1 << 20))
    cmd = ["qemu-system-x86_64", "-M", "microvm,rtc=on", "-accel", "tcg", "-cpu", "EPYC",
           "-m", "128", "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
           "-serial", "stdio", "-no-reboot", "-kernel", str(guest.kernel),
           "-initrd", str(guest.initrd), "-append", f"{guest.cmdline} {protocol.READ_BENCH_PARAM}",
           "-drive", f"id=d0,file={disk},format=raw,if=none",
           "-device", "virtio-blk-device,drive=d0"]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=180,
                          check=False)
    lines = proc.stdout.decode(errors="replace").replace("\r", "").splitlines()
    assert proc.returncode == 0
    assert protocol.BOOT_MARKER in lines
    assert f"{protocol.DISK_OK} {protocol.DISK_PATTERN_SHA256}" in lines
    bench = [b for b in map(protocol.parse_read_bench, lines) if b]
    assert bench and bench[0][0] == protocol.READ_BENCH_BYTES
    assert protocol.disk_round_trip_ok(str(disk))


@pytest.mark.slow
def test_guest_reports_disk_failure_on_a_too_small_disk(guest, tmp_path: Path) -> None:
    disk = _disk(tmp_path, protocol.DISK_TEST_OFFSET)  # the test block lies past the end
    cmd = ["qemu-system-x86_64", "-M", "microvm,rtc=on", "-accel", "tcg", "-cpu", "EPYC",
           "-m", "128", "-nodefaults", "-no-user-config", "-display", "none",
           "-serial", "stdio", "-no-reboot", "-kernel", str(guest.kernel),
           "-initrd", str(guest.initrd), "-append", guest.cmdline,
           "-drive", f"id=d0,file={disk},format=raw,if=none",
           "-device", "virtio-blk-device,drive=d0"]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=180,
                          check=False)
    lines = proc.stdout.decode(errors="replace").replace("\r", "").splitlines()
    assert protocol.BOOT_MARKER in lines
    assert any(ln.startswith(protocol.DISK_FAIL) for ln in lines)
    assert not any(ln.startswith(protocol.DISK_OK) for ln in lines)


@pytest.mark.nested
@pytest.mark.slow
def test_mvtool_boot_in_nested_host_marker_disk_poweroff(guest, tmp_path: Path) -> None:
    disk = _disk(tmp_path, 16 << 20)
    log = tmp_path / "console.log"
    proc = subprocess.run([sys.executable, "-m", "mvtool", "boot", "--host", "nested",
                           "--disk", str(disk), "--json", "--timeout", "400",
                           "--console-log", str(log)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["status"] == 0
    assert summary["exit_reason"] == "poweroff"
    assert summary["boot_to_marker_seconds"] is not None
    assert summary["disk_round_trip"] == "ok"
    console = log.read_text(errors="replace")
    assert protocol.BOOT_MARKER in console
    assert f"{protocol.DISK_OK} {protocol.DISK_PATTERN_SHA256}" in console
    assert protocol.disk_round_trip_ok(str(disk))  # the bytes really reached the backing file
