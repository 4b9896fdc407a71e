"""CVE-2026-5747 from a root process of the Linux guest (``mvtool attack linux``).

The nested tests boot Debian's kernel with the attack initramfs once per model, the way
``mvtool boot`` boots it (inside the nested host on a KVM-PVM machine): the verified model must
ignore the queue rewrites and keep serving the disk until the guest powers off; the vulnerable
twin must take the rewrite and be stopped by the containment monitor on the next request.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from mvtool.attack import (
    LINUX_STEPS,
    build_attack_initramfs,
    expected_reference_sha,
    kernel_devmem_config,
)
from mvtool.errors import MvtoolError
from mvtool.guests import protocol
from mvtool.paths import ROOT

QEMU = "qemu-system-x86_64"


def _guest():
    from mvtool.guests import default_guest

    try:
        return default_guest()
    except MvtoolError as exc:
        pytest.skip(str(exc))


def _need_qemu() -> None:
    if shutil.which(QEMU) is None:
        pytest.skip(f"{QEMU} not installed (Debian package qemu-system-x86)")


def _mvtool(*argv: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mvtool", *argv], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, check=False)


@pytest.fixture(scope="module")
def linux_runs() -> tuple[int, dict[str, dict]]:
    """One nested session: the attack guest booted against each model (~1 min)."""
    _need_qemu()
    _guest()
    proc = _mvtool("attack", "linux", "--model", "both", "--json", "--no-smt", timeout=900)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"no JSON from `mvtool attack linux` (status {proc.returncode}): "
                    f"{proc.stderr.strip().splitlines()[-3:]}")
    return proc.returncode, {r["model"]: r for r in data["runs"]}


@pytest.mark.nested
@pytest.mark.slow
def test_verified_model_absorbs_the_rewrites(linux_runs):
    status, runs = linux_runs
    r = runs["verified"]
    assert r["prevented"] is None, r["prevented"]
    assert r["exit_kind"] == "poweroff", r["exit_reason"]
    assert r["status"] == 0 and r["vmm_survived"]
    assert r["reference_ok"] is True and r["guest_done"] is True
    assert r["disk_round_trip"] == "ok"
    for step in r["steps"]:
        # the guest's write reached the device (not refused by /dev/mem) and read back unchanged
        assert step["write"] == "done", step
        assert int(step["after"], 16) == int(step["before"], 16) != int(step["value"], 16)
        assert step["io_ok"] is True and step["disk_ok"] is True, step
    assert set(r["ignored_writes"]) == {reg for _, reg, _, _ in LINUX_STEPS}
    assert r["outside_count"] == 0 and r["device_errors"] == 0
    assert r["requests_served"] > 256  # the ring wrapped after the rewrites
    assert r["outcome"] == "absorbed" and r["as_expected"]
    assert status == 0


@pytest.mark.nested
@pytest.mark.slow
def test_twin_takes_the_rewrite_and_is_contained(linux_runs):
    _status, runs = linux_runs
    r = runs["vulnerable"]
    assert r["prevented"] is None, r["prevented"]
    first = r["steps"][0]
    assert int(first["after"], 16) == int(first["value"], 16)  # the twin accepted QueueNum
    assert first["io_ok"] is None  # the VMM stopped during the next reads
    assert r["exit_kind"] == "containment", r["exit_reason"]
    assert "accessed guest memory outside the regions validated at activation" in r["exit_reason"]
    assert r["outside_count"] >= 1 and r["vmm_survived"] and r["status"] != 0
    assert not r["guest_done"]
    assert r["outcome"] == "caught" and r["as_expected"]


@pytest.mark.slow
def test_kernel_refuses_devmem_without_iomem_relaxed(tmp_path):
    """The attack needs `iomem=relaxed`: without it Debian's kernel (STRICT_DEVMEM +
    IO_STRICT_DEVMEM) refuses /dev/mem on the window virtio_mmio holds, and the script says so.
    Booted under QEMU's software emulation on this host (no nested host needed)."""
    _need_qemu()
    guest = _guest()
    config = kernel_devmem_config()
    if config["CONFIG_IO_STRICT_DEVMEM"] != "y":
        pytest.skip("the guest kernel is not built with CONFIG_IO_STRICT_DEVMEM=y")
    disk = tmp_path / "disk.img"
    disk.write_bytes(protocol.DISK_PATTERN * 512)
    cmd = [QEMU, "-M", "microvm,rtc=on,acpi=on", "-accel", "tcg", "-m", "256",
           "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
           "-no-reboot", "-kernel", str(guest.bzimage), "-initrd", str(build_attack_initramfs()),
           "-append", f"{guest.cmdline} {protocol.ATTACK_PARAM}=queue-rewrite",
           "-drive", f"id=d0,file={disk},format=raw,if=none",
           "-device", "virtio-blk-device,drive=d0"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False).stdout
    lines = [ln.strip() for ln in out.splitlines() if ln.startswith(protocol.ATTACK_LINE)]
    assert any("error=devmem-refused" in ln for ln in lines), out[-2000:]
    # the disk is untouched by the refused attempt and the guest's reference read was right
    setup = dict(kv.split("=", 1) for kv in next(ln for ln in lines if "sha=" in ln).split()
                 if "=" in kv)
    assert setup["sha"] == expected_reference_sha(int(setup["blocks"]))


def test_linux_rejects_no_stop():
    proc = _mvtool("attack", "linux", "--no-stop", timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        ("mvtool: error: --no-stop is not available for the Linux guest (the boot runs the "
        "enforcing monitor)")]
