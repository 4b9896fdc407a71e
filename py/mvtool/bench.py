"""``mvtool bench``: benchmarks, reported (never asserted in tests).

* ``bench prove`` — the SMT check of the whole catalogue and of a single obligation, end to end
  (catalogue validation, model loading, type-checking, solving), median of ``--runs`` runs, the
  whole catalogue with as many processes as ``mvtool prove`` uses by default (one per core).
  Also the solver seconds of every obligation (median over the whole-catalogue runs), the
  slowest first. Targets: whole catalogue < 10 s, one obligation < 1 s (end to end, and the
  solver time of every obligation).
* ``bench boot`` — boot benchmark against a peer VMM, implemented by :mod:`mvtool.bench_boot`
  (its ``add_arguments``/``run``), imported only when the ``bench`` command is used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from mvtool.errors import MvtoolError

#: targets of ``bench prove`` (seconds), reported next to the measurements
TARGET_WHOLE_S = 10.0
TARGET_ONE_S = 1.0


def _measure(fn: Any, runs: int) -> tuple[list[float], Any]:
    times = []
    last = None
    for _ in range(runs):
        t0 = time.perf_counter()
        last = fn()
        times.append(time.perf_counter() - t0)
    return times, last


def bench_prove(runs: int, obligation: str | None, timeout_s: float, jobs: int) -> dict[str, Any]:
    """Time ``prove`` on the whole catalogue and on one obligation; medians of ``runs`` runs."""
    from mvtool import prove
    from mvtool.paths import ROOT

    per_obligation: dict[str, list[float]] = {}

    def whole() -> Any:
        checked = prove.prove(ROOT, backends=("smt",), timeout_s=timeout_s, jobs=jobs)[0]
        for c in checked:
            per_obligation.setdefault(c.obligation.id, []).append(
                float(c.results["smt"].get("seconds", 0.0)))
        return checked

    checked_all = None
    whole_times, checked_all = _measure(whole, runs)
    one_id = obligation or checked_all[0].obligation.id

    def one() -> Any:
        return prove.prove(ROOT, backends=("smt",), only=[one_id], timeout_s=timeout_s,
                           jobs=1)[0]

    one_times, checked_one = _measure(one, runs)
    summary = prove.summarise(checked_all, ("smt",))
    status = {c.obligation.id: c.results["smt"]["status"] for c in checked_all}
    slowest = sorted(((statistics.median(t), i, status[i]) for i, t in per_obligation.items()),
                     reverse=True)
    return {
        "runs": runs,
        "jobs": jobs,
        "timeout_s": timeout_s,
        "whole": {"obligations": len(checked_all), "median_s": statistics.median(whole_times),
                  "times_s": whole_times, "target_s": TARGET_WHOLE_S,
                  "status_counts": summary["smt"]["counts"]},
        "one": {"obligation": one_id, "median_s": statistics.median(one_times),
                "times_s": one_times, "target_s": TARGET_ONE_S,
                "status": checked_one[0].results["smt"]["status"]},
        "solver_target_s": TARGET_ONE_S,
        "above_solver_target": sum(1 for sec, _, _ in slowest if sec >= TARGET_ONE_S),
        "slowest": [{"obligation": i, "seconds": round(sec, 4), "status": st}
                    for sec, i, st in slowest],
    }


def _print_prove(r: dict[str, Any]) -> None:
    w, o = r["whole"], r["one"]

    def verdict(x: float, target: float) -> str:
        return "within target" if x < target else "ABOVE target"

    counts = ", ".join(f"{n} {s}" for s, n in sorted(w["status_counts"].items()))
    print(f"prove benchmark: median of {r['runs']} run(s), {r['jobs']} SMT process(es), "
          f"SMT limit {r['timeout_s']:g} s per obligation")
    print(f"  whole catalogue ({w['obligations']} obligations): {w['median_s']:.2f} s "
          f"(target < {w['target_s']:g} s: {verdict(w['median_s'], w['target_s'])}; {counts})")
    print(f"  one obligation ({o['obligation']}): {o['median_s']:.3f} s "
          f"(target < {o['target_s']:g} s: {verdict(o['median_s'], o['target_s'])}; "
          f"{o['status']})")
    print(f"  obligations with solver time >= {r['solver_target_s']:g} s (median): "
          f"{r['above_solver_target']} of {w['obligations']}")
    print("  slowest obligations (solver time, median): "
          + ", ".join(f"{x['obligation']} {x['seconds']:.2f} s" for x in r["slowest"][:5]))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``mvtool bench``."""
    sub = parser.add_subparsers(dest="bench", metavar="BENCHMARK")
    p = sub.add_parser("prove", help="SMT check of the whole catalogue and of one obligation")
    p.add_argument("--runs", type=int, default=5, help="runs per measurement (median; default 5)")
    p.add_argument("--obligation", metavar="ID", help="the single obligation (default: first)")
    p.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                   help="SMT time limit per obligation (default 60)")
    p.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="parallel SMT processes for the whole catalogue "
                        "(default: as `mvtool prove`, one per core)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    b = sub.add_parser("boot", help="boot benchmark against a peer VMM (mvtool.bench_boot)")
    try:  # the boot benchmark's own options; it is imported only for `bench` itself
        from mvtool import bench_boot
    except ModuleNotFoundError as exc:
        if not (exc.name and "bench_boot" in exc.name):
            raise
        b.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    else:
        bench_boot.add_arguments(b)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``mvtool bench``."""
    if not getattr(args, "bench", None):
        raise MvtoolError("choose a benchmark: prove or boot (see `mvtool bench --help`)")
    if args.bench == "boot":
        try:
            from mvtool import bench_boot
        except ModuleNotFoundError as exc:
            if exc.name and "bench_boot" in exc.name:
                raise MvtoolError("the boot benchmark is not available in this installation "
                                  "(module mvtool.bench_boot missing)") from None
            raise
        return int(bench_boot.run(args) or 0)
    if args.runs < 1:
        raise MvtoolError("--runs must be at least 1")
    if args.jobs is None:
        from mvtool.prove import default_jobs

        args.jobs = default_jobs()
    if args.timeout <= 0 or args.jobs < 1:
        raise MvtoolError("--timeout must be positive and --jobs at least 1")
    from mvtool.catalogue import load_catalogue
    from mvtool.paths import ROOT

    if args.obligation and args.obligation not in load_catalogue(ROOT).by_id():
        raise MvtoolError(f"unknown obligation id {args.obligation!r}")
    result = bench_prove(args.runs, args.obligation, args.timeout, args.jobs)
    if args.json:
        json.dump({"prove": result}, sys.stdout, indent=2)
        print()
    else:
        _print_prove(result)
    return 0
