"""Boot benchmark plumbing: memory accounting and the summary (the benchmark itself is not a
test; it runs with ``mvtool bench boot``)."""

from __future__ import annotations

import mmap
import os

import pytest
from mvtool.bench_boot import resident_kib, run_boot_bench, summarize
from mvtool.errors import MvtoolError


def test_resident_memory_excludes_the_guest_ram_mapping() -> None:
    size = 64 << 20
    with mmap.mmap(-1, size) as m:
        for off in range(0, size, 4096):  # make every page resident
            m[off] = 1
        got = resident_kib(os.getpid(), size)
        assert got is not None
        total, excl = got
        assert total - excl >= (size >> 10) * 9 // 10
        assert excl > 0
    assert resident_kib(2 ** 22 + 12345, size) is None  # no such process


def _run(vmm: str, marker: float | None, rss: int, read: float, disk: bool) -> dict:
    return {"vmm": vmm, "boot_to_marker_seconds": marker, "rss_kib": rss * 2,
            "rss_excl_guest_kib": rss, "read_mib_per_s": read, "disk_round_trip": disk,
            "error": None if marker else "marker never appeared: x"}


def test_summary_medians_and_ratios_ignore_failed_runs() -> None:
    runs = [_run("microvmm", 10.0, 100, 20.0, True), _run("qemu", 5.0, 400, 40.0, True),
            _run("microvmm", 30.0, 300, 10.0, True), _run("qemu", 15.0, 200, 20.0, True),
            _run("microvmm", None, 1, 1.0, False)]
    s = summarize(runs)
    mv, qm = s["per_vmm"]["microvmm"], s["per_vmm"]["qemu"]
    assert (mv["runs"], mv["reached_marker"], mv["disk_round_trips_ok"]) == (3, 2, 2)
    assert mv["boot_to_marker_seconds"] == 20.0 and qm["boot_to_marker_seconds"] == 10.0
    assert mv["errors"] == ["marker never appeared: x"]
    r = s["ratios_microvmm_over_qemu"]
    assert r["boot_to_marker_seconds"] == 2.0
    assert r["rss_excl_guest_kib"] == 200 / 300
    assert r["read_mib_per_s"] == 15.0 / 30.0
    assert summarize([_run("qemu", 1.0, 1, 1.0, True)])["ratios_microvmm_over_qemu"][
        "boot_to_marker_seconds"] is None


@pytest.mark.parametrize("kwargs, message", [
    ({"rounds": 0}, "rounds 0"),
    ({"vmms": ("firecracker",)}, "unknown VMM 'firecracker'"),
    ({"host": "cloud"}, "host 'cloud'"),
])
def test_bad_arguments_are_one_line_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(MvtoolError, match=message):
        run_boot_bench(progress=False, **kwargs)
