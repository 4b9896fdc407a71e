"""The nested host (software-emulated x86 with SVM): exit status, streams, limits, clean-up.

These boot a real L1 Linux under QEMU's software emulation, so they are slow.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mvtool.errors import MvtoolError
from mvtool.guests import protocol

pytestmark = [pytest.mark.nested, pytest.mark.slow]


def _guest():
    from mvtool.guests import default_guest, nested_host_image

    try:
        return default_guest(), nested_host_image()
    except MvtoolError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def built():
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
    return _guest()


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _descendants(pid: int | None = None) -> list[int]:
    kids = _children()
    todo, out = [pid or os.getpid()], []
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def test_exit_status_and_streams_cross_the_nested_host(built, tmp_path: Path) -> None:
    from mvtool.nested import run_nested

    out = tmp_path / "written-inside"
    res = run_nested(["sh", "-c", (f"echo on-stdout; echo on-stderr >&2; test -c /dev/kvm && "
                      f"echo kvm-present; echo data > {out}; exit 7")],
                     writable=[tmp_path], progress=False, echo=False, timeout=300)
    assert res.exit_code == 7
    assert "on-stdout" in res.lines and "kvm-present" in res.lines
    assert "on-stderr" not in res.lines  # stderr travels separately
    assert out.read_text() == "data\n"  # the writable share reaches the host
    assert not _descendants()


def test_host_root_is_read_only_inside(built, tmp_path: Path) -> None:
    from mvtool.nested import run_nested

    # tmp_path is not shared: writing there must fail inside L1.
    res = run_nested(["sh", "-c", f"echo x > {tmp_path}/nope"], writable=[],
                     progress=False, echo=False, timeout=300)
    assert res.exit_code != 0
    assert not (tmp_path / "nope").exists()


def test_qemu_as_l2_boots_the_guest_with_kvm(built, tmp_path: Path) -> None:
    """The measured recipe: QEMU microvm with KVM inside L1 boots the default guest."""
    from mvtool.bench_boot import qemu_argv
    from mvtool.nested import run_nested

    guest, _ = built
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(protocol.DISK_MIN_BYTES + (1 << 20))
    argv = qemu_argv(str(guest.kernel), str(guest.initrd), guest.cmdline, str(disk), 128)
    res = run_nested(argv, writable=[tmp_path], progress=False, echo=False, timeout=480)
    assert res.exit_code == 0, res.lines[-10:]
    assert protocol.BOOT_MARKER in res.lines
    assert f"{protocol.DISK_OK} {protocol.DISK_PATTERN_SHA256}" in res.lines
    assert protocol.disk_round_trip_ok(str(disk))


def test_l1_not_up_within_timeout_is_one_error_and_no_leftovers(built) -> None:
    from mvtool.nested import run_nested

    with pytest.raises(MvtoolError, match="L1 did not come up within 1 s"):
        run_nested(["true"], progress=False, timeout=1.0)
    assert not _descendants()


def test_missing_qemu_is_one_line_error(built, tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path))  # no qemu on this PATH
    proc = subprocess.run([sys.executable, "-m", "mvtool", "boot", "--host", "nested"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (
        "mvtool: error: nested host: qemu-system-x86_64 not found "
        "(install the Debian package qemu-system-x86)")
    assert "Traceback" not in proc.stderr


def test_ctrl_c_leaves_no_qemu_behind(built) -> None:
    code = ("from mvtool.nested import run_in_nested_host\n"
            "run_in_nested_host(['--help'], timeout=600, progress=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        assert "starting L1" in proc.stderr.readline()
        deadline = time.monotonic() + 30
        qemus: list[int] = []
        while not qemus and time.monotonic() < deadline:
            qemus = [p for p in _descendants(proc.pid) if "qemu" in _comm(p)]
            time.sleep(0.2)
        assert qemus, "L1 QEMU never started"
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in qemus) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in qemus)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
