"""``mvtool prove``: check every obligation of the catalogue and print the proof matrix.

The catalogue is validated, type-checked and rendered exactly as ``mvtool gen`` does (nothing is
written; see :func:`prove` for ``--only``). The model is loaded once; the obligations are checked
in parallel (``--jobs``, by default one process per core, forked from the process that loaded
the model), the slowest of the previous run first (``_cache/prove-seconds.json``, a scheduling
hint only). The SMT backend checks each statement (the statement of the generated theorem: same
binders, same text, same namespaces); the Lean backend runs ``lake build`` where a Lean
toolchain exists and reports ``not_available`` otherwise — a Lean result is never claimed where
Lean did not run. A ``failed`` check is shown in one or two lines (``--verbose``: in full).

``--mutants`` instead checks the model's seeded bugs (``tests/mutants/mutants.yaml``): each
mutant's edits are applied in memory (``load_project(overrides=...)``) and the SMT backend must
refute every target obligation with a counterexample. The kill rate must be 100%.

Exit status: 0 when no available backend reports ``counterexample`` or ``failed`` (with
``--mutants``: when every mutant is killed), 1 otherwise, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvtool import catalogue as cat
from mvtool import gen
from mvtool.errors import MvtoolError

BACKENDS = ("smt", "lean")
#: statuses that make ``prove`` fail when an available backend reports them
FAILING = ("counterexample", "failed")
DEFAULT_TIMEOUT_S = 60.0

#: display names of the transport state's fields (virtio-mmio registers, VirtIO 1.2 §4.2.2)
REGISTER_OF_FIELD = {
    "deviceId": "DeviceID",
    "deviceFeatures": "DeviceFeatures (both words)",
    "ramBase": "guest RAM base",
    "ramSize": "guest RAM size",
    "deviceFeaturesSel": "DeviceFeaturesSel",
    "driverFeatures": "DriverFeatures (both words)",
    "driverFeaturesSel": "DriverFeaturesSel",
    "queueSel": "QueueSel",
    "interruptStatus": "InterruptStatus",
    "status": "Status",
    "configGeneration": "ConfigGeneration",
    "num": "QueueNum",
    "ready": "QueueReady",
    "desc": "QueueDesc",
    "driver": "QueueDriver",
    "device": "QueueDevice",
}


# ---- checking ---------------------------------------------------------------------------------

@dataclass
class Checked:
    """The outcome of checking one obligation on every requested backend."""

    obligation: cat.Obligation
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


# Worker state for the process pool, inherited through fork (see _run_pool): the project is
# loaded once, in the parent, and every worker starts with it.
_WORK: dict[str, Any] = {}

#: per-obligation solver seconds of the last run, used only to start the slowest first
HINTS_FILE = "prove-seconds.json"


def default_jobs() -> int:
    """Parallel SMT processes by default: one per core."""
    return max(1, os.cpu_count() or 1)


def _smt_one(args: tuple[str, int]) -> dict[str, Any]:
    from mvtool.backends import smt

    name, timeout_ms = args
    th = _WORK["theorems"][name]
    r = smt.check_statement(_WORK["project"], th, timeout_ms=timeout_ms)
    out = r.to_json()
    out.pop("backend", None)
    out.pop("theorem", None)
    return out


def _hints() -> dict[str, float]:
    """Solver seconds per obligation id from the last run (empty when unknown)."""
    from mvtool.paths import CACHE_DIR

    try:
        data = json.loads((CACHE_DIR / HINTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}


def _save_hints(results: dict[str, dict[str, Any]]) -> None:
    """Remember the solver seconds of ``results`` (obligation id -> result) for scheduling."""
    from mvtool.paths import CACHE_DIR

    hints = _hints()
    hints.update({k: float(r["seconds"]) for k, r in results.items()
                  if isinstance(r.get("seconds"), (int, float))})
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{HINTS_FILE}.", dir=CACHE_DIR)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(hints, fh, indent=0, sort_keys=True)
        os.replace(tmp, CACHE_DIR / HINTS_FILE)
    except OSError:
        pass  # a scheduling hint only


def _run_pool(fn: Any, work: list[Any], cost: list[float], jobs: int) -> list[Any]:
    """``[fn(w) for w in work]``, in ``jobs`` forked processes when > 1, the most costly first
    (so that no long task starts last); results in the order of ``work``."""
    if jobs <= 1 or len(work) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [fn(w) for w in work]
    order = sorted(range(len(work)), key=lambda i: -cost[i])
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=ctx) as pool:
        futures = {i: pool.submit(fn, work[i]) for i in order}
        try:
            return [futures[i].result() for i in range(len(work))]
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # e.g. a broken mutant: stop now
            raise


def _check_many(project: Any, theorems: dict[str, Any], names: list[str], timeout_ms: int,
                jobs: int) -> dict[str, dict[str, Any]]:
    """SMT-check ``names`` (keys of ``theorems``), in ``jobs`` forked processes when > 1."""
    _WORK["project"] = project
    _WORK["theorems"] = theorems
    hints = _hints() if jobs > 1 else {}
    cost = [hints.get(n, float("inf")) for n in names]
    results = _run_pool(_smt_one, [(n, timeout_ms) for n in names], cost, jobs)
    return dict(zip(names, results, strict=True))


def typecheck_all(project: Any, obligations: list[cat.Obligation]) -> dict[str, Any]:
    """Type-check the statements of ``obligations`` in ``project``: id -> ir.Theorem."""
    from mvtool.leanprofile import ProfileError

    out = {}
    for ob in obligations:
        try:
            th = project.typecheck_statement(ob.binder_list, ob.statement,
                                             namespace=cat.OBLIGATIONS_NAMESPACE,
                                             opens=gen.STATEMENT_OPENS,
                                             file=f"{ob.id}.statement")
        except ProfileError as exc:
            raise MvtoolError(f"obligation {ob.id!r}, field 'statement': {exc}") from None
        th.name = ob.theorem_name
        out[ob.id] = th
    return out


def _lean_results(root: Path, generated: gen.Generated | None,
                  obligations: list[cat.Obligation]) -> dict[str, dict[str, Any]]:
    """Lean results per obligation id (``not_available`` without a toolchain)."""
    from mvtool.backends import lean as lean_backend

    if not lean_backend.available():
        reason = "lake is not on PATH (no Lean toolchain)"
        return {ob.id: {"status": "not_available", "reason": reason} for ob in obligations}
    if generated is None:
        generated = gen.render(root)
    stale = gen.differences(root, generated)
    if stale:
        reason = f"generated files out of date ({', '.join(stale)}); run `mvtool gen`"
        return {ob.id: {"status": "failed", "reason": reason} for ob in obligations}
    from mvtool.leanprofile import ProfileError, load_project

    try:
        full = load_project(root)
    except ProfileError as exc:
        raise MvtoolError(str(exc)) from None
    results = lean_backend.build(full, root)
    out = {}
    for ob in obligations:
        r = results.get(ob.theorem_name)
        if r is None:
            out[ob.id] = {"status": "failed", "reason": "theorem not found in the Lean build"}
        else:
            j = r.to_json()
            j.pop("backend", None)
            j.pop("theorem", None)
            out[ob.id] = j
    return out


def prove(root: Path, *, backends: tuple[str, ...] = BACKENDS, only: list[str] | None = None,
          timeout_s: float = DEFAULT_TIMEOUT_S, jobs: int = 1) -> tuple[list[Checked], Any]:
    """Check the catalogue (or the obligations ``only``) on ``backends``.

    Returns the per-obligation results and the loaded model project.

    The whole catalogue is rendered as ``mvtool gen`` renders it (every statement type-checked,
    errors located in the catalogue); so is a selection ``only`` when the Lean backend will
    build the generated files. Otherwise a selection needs only the validated catalogue, the
    model and its own statements."""
    from mvtool.backends import lean as lean_backend

    generated: gen.Generated | None = None
    if not only or ("lean" in backends and lean_backend.available()):
        generated = gen.render(root)
        catalogue, project = generated.catalogue, generated.project
    else:
        catalogue, project = cat.load_catalogue(root), gen.load_model(root)
    by_id = catalogue.by_id()
    if only:
        unknown = [i for i in only if i not in by_id]
        if unknown:
            raise MvtoolError(f"unknown obligation id {unknown[0]!r} (see {cat.CATALOGUE_PATH})")
    selected = [by_id[i] for i in dict.fromkeys(only)] if only else list(catalogue.obligations)
    checked = [Checked(ob) for ob in selected]
    if "smt" in backends:
        theorems = typecheck_all(project, selected)
        want = [ob.id for ob in selected if "smt" in ob.backends]
        res = _check_many(project, theorems, want, int(timeout_s * 1000), jobs)
        _save_hints(res)
        for c in checked:
            c.results["smt"] = res.get(c.obligation.id, {"status": "not_requested"})
    if "lean" in backends:
        lean = _lean_results(root, generated, selected)
        for c in checked:
            c.results["lean"] = lean[c.obligation.id]
    return checked, project


# ---- mutants ----------------------------------------------------------------------------------

@dataclass
class MutantOutcome:
    """The SMT results of one mutant on its target obligations."""

    mutant: cat.Mutant
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: str | None = None

    @property
    def killed(self) -> bool:
        """Every target refuted with a counterexample."""
        return self.error is None and all(r.get("status") == "counterexample"
                                          for r in self.results.values())


def mutant_project(root: Path, mutant: cat.Mutant) -> Any:
    """The model project with ``mutant`` applied in memory."""
    overrides = mutant.apply(root)
    try:
        return gen.load_model(root, overrides)
    except MvtoolError as exc:
        raise MvtoolError(f"mutant {mutant.id!r} is outside the profile: {exc}") from None


def _mutant_one(args: tuple[str, int]) -> MutantOutcome:
    """Load one mutant's project and check its targets (in a worker of the pool)."""
    mutant_id, timeout_ms = args
    m = _WORK["mutants"][mutant_id]
    root = _WORK["root"]
    project = mutant_project(root, m)  # MvtoolError: the mutant is broken, the run stops
    try:
        theorems = typecheck_all(project, [_WORK["obligations"][t] for t in m.targets])
    except MvtoolError as exc:
        return MutantOutcome(m, error=str(exc))
    return MutantOutcome(m, _check_many(project, theorems, list(m.targets), timeout_ms, 1))


def run_mutants(root: Path, *, only: list[str] | None = None,
                timeout_s: float = DEFAULT_TIMEOUT_S, jobs: int = 1) -> list[MutantOutcome]:
    """Check every mutant (or the mutants ``only``) against its target obligations, the mutants
    spread over ``jobs`` processes."""
    catalogue = cat.load_catalogue(root)
    mutants = cat.load_mutants(root, catalogue)
    by_id = mutants.by_id()
    if only:
        unknown = [i for i in only if i not in by_id]
        if unknown:
            raise MvtoolError(f"unknown mutant id {unknown[0]!r} (see {cat.MUTANTS_PATH})")
    selected = [by_id[i] for i in dict.fromkeys(only)] if only else list(mutants.mutants)
    _WORK.update(root=root, mutants=by_id, obligations=catalogue.by_id())
    hints = _hints() if jobs > 1 else {}
    cost = [sum(hints.get(t, 1.0) for t in m.targets) for m in selected]
    return _run_pool(_mutant_one, [(m.id, int(timeout_s * 1000)) for m in selected], cost, jobs)


# ---- presentation -----------------------------------------------------------------------------

def _constants(project: Any, prefix: str) -> dict[int, str]:
    """Values of the model's ``<prefix>*`` constants (e.g. register offsets) -> name."""
    from mvtool.leanprofile import ir

    out: dict[int, str] = {}
    for name, d in project.defs.items():
        short = name.rsplit(".", 1)[-1]
        if short.startswith(prefix) and not d.params and isinstance(d.body, ir.BVLit):
            out.setdefault(d.body.value, short[len(prefix):])
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if v < 10 else f"{v:#x}"
    return str(v)


def _flatten(v: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(v, dict):
        out: dict[str, Any] = {}
        for k, x in v.items():
            out.update(_flatten(x, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: v}


class Describer:
    """Names for values in counterexamples: register offsets and status bits, from the model."""

    def __init__(self, project: Any):
        self.registers = _constants(project, "reg")
        bits = _constants(project, "status")
        self.status_bits = {v: n for v, n in bits.items() if v and v & (v - 1) == 0}

    def status(self, v: int) -> str:
        if v == 0:
            return "reset"
        names = [_split_camel(n) for b, n in sorted(self.status_bits.items()) if v & b]
        rest = v & ~sum(b for b in self.status_bits if v & b)
        if rest:
            names.append(f"{rest:#x}")
        return "|".join(names)

    def field(self, path: str, v: Any) -> str:
        last = path.rsplit(".", 1)[-1]
        reg = REGISTER_OF_FIELD.get(last)
        queue = re.match(r"(?:.*\.)?q(\d)\.", path)
        label = f"{reg}[{queue.group(1)}]" if reg and queue else reg
        text = _fmt(v)
        if last == "status" and isinstance(v, int):
            text += f" ({self.status(v)})"
        return f"{path} = {text}" + (f"   -- {label}" if label and last != "status" else "")

    def binder(self, name: str, v: Any) -> str:
        text = _fmt(v)
        if name in ("off", "offset") and isinstance(v, int) and v in self.registers:
            text += f" ({self.registers[v]})"
        return f"{name} = {text}"


def _split_camel(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def describe_counterexample(project: Any, result: dict[str, Any], indent: str = "    "
                            ) -> list[str]:
    """Readable lines for an SMT counterexample: the failed conjunct, the inputs, the pre-state
    (every field, with register names) and each derived post-state (fields that changed, plus
    those the failed conjunct mentions)."""
    d = Describer(project)
    cex: dict[str, Any] = result.get("counterexample") or {}
    derived: dict[str, Any] = result.get("derived") or {}
    failed = result.get("failed_conjunct")
    mentioned = set(re.findall(r"\.([A-Za-z_][A-Za-z0-9_]*)", failed or ""))
    lines = []
    if failed:
        lines.append(f"{indent}failed: {failed}")
    scalars = {k: v for k, v in cex.items() if not isinstance(v, dict)}
    structs = {k: v for k, v in cex.items() if isinstance(v, dict)}
    if scalars:
        lines.append(f"{indent}inputs: " + ", ".join(d.binder(k, v) for k, v in scalars.items()))
    for name, v in structs.items():
        lines.append(f"{indent}{name} (pre-state):")
        lines += [f"{indent}  {d.field(p, x)}" for p, x in _flatten(v).items()]
    for text, v in derived.items():
        if not isinstance(v, dict):
            continue
        flat = _flatten(v)
        base = next((b for b in structs.values() if set(_flatten(b)) == set(flat)), None)
        if base is not None:
            before = _flatten(base)
            shown = [p for p in flat if flat[p] != before[p]
                     or p.rsplit(".", 1)[-1] in mentioned]
            lines.append(f"{indent}{text}:" + ("" if shown else " unchanged"))
            for p in shown:
                arrow = f"{_fmt(before[p])} -> " if flat[p] != before[p] else ""
                lines.append(f"{indent}  {p}: {arrow}{d.field(p, flat[p]).split(' = ', 1)[1]}")
        else:
            shown = [p for p in flat if p.rsplit(".", 1)[-1] in mentioned] or list(flat)
            lines.append(f"{indent}{text}: "
                         + ", ".join(f"{p} = {_fmt(flat[p])}" for p in shown))
    return lines


#: longest readable rendering of a failure's detail (the full text: --verbose or --json)
BRIEF_CHARS = 160
#: longest rendering of one decision of an undecided case (``off = 0x70``, a condition ...)
BRIEF_PART_CHARS = 48


def brief(detail: str) -> tuple[str, bool]:
    """``detail`` as at most two readable lines: whitespace collapsed, each further decision of
    an undecided case (after the first ``; ``) and the whole cut short. Returns (text, whether it was
    shortened). A solver's undecided case can name conditions thousands of characters long."""
    text = " ".join(detail.split())
    first, *decisions = text.split("; ")
    out = "; ".join([first] + [p if len(p) <= BRIEF_PART_CHARS
                               else p[:BRIEF_PART_CHARS - 1] + "…" for p in decisions])
    if len(out) > BRIEF_CHARS:
        out = out[:BRIEF_CHARS - 1] + "…"
    return out, out != text


def _failure_lines(detail: str, indent: str, verbose: bool) -> list[str]:
    if verbose or not detail:
        return [f"{indent}{detail}"] if detail else []
    text, cut = brief(detail)
    lines = [f"{indent}{text}"]
    if cut:
        lines.append(f"{indent}(shortened; --verbose or --json for the full detail)")
    return lines


def _status_cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    st = r.get("status", "?")
    cell = st.replace("_", " ")
    if "seconds" in r and st in ("proved", "counterexample", "failed"):
        cell += f" ({r['seconds']:.2f} s)"
    return cell


def summarise(checked: list[Checked], backends: tuple[str, ...]) -> dict[str, Any]:
    """Counts per backend and status, and the overall verdict."""
    summary: dict[str, Any] = {"obligations": len(checked)}
    ok = True
    for b in backends:
        counts: dict[str, int] = {}
        seconds = 0.0
        for c in checked:
            r = c.results.get(b)
            if r is None:
                continue
            counts[r["status"]] = counts.get(r["status"], 0) + 1
            seconds += float(r.get("seconds", 0.0) or 0.0)
            if r["status"] in FAILING:
                ok = False
        summary[b] = {"counts": counts, "seconds": round(seconds, 3)}
    summary["ok"] = ok
    return summary


def print_matrix(checked: list[Checked], backends: tuple[str, ...], project: Any,
                 wall: float, verbose: bool = False) -> None:
    """The human-readable proof matrix, counterexample details and summary."""
    w_id = max([len("obligation")] + [len(c.obligation.id) for c in checked])
    header = f"{'obligation':<{w_id}}  {'kind':<11}" + "".join(f"  {b:<24}" for b in backends)
    print(header.rstrip())
    print("-" * len(header.rstrip()))
    for c in checked:
        row = f"{c.obligation.id:<{w_id}}  {c.obligation.kind:<11}"
        row += "".join(f"  {_status_cell(c.results.get(b)):<24}" for b in backends)
        print(row.rstrip())
    for c in checked:
        for b in backends:
            r = c.results.get(b) or {}
            if r.get("status") == "counterexample":
                print(f"\n{c.obligation.id} [{b}]: counterexample — {c.obligation.title}")
                for line in describe_counterexample(project, r):
                    print(line)
            elif r.get("status") == "failed":
                why = r.get("detail") or r.get("reason") or ""
                print(f"\n{c.obligation.id} [{b}]: failed")
                for line in _failure_lines(why, "    ", verbose):
                    print(line)
    summary = summarise(checked, backends)
    parts = []
    for b in backends:
        counts = summary[b]["counts"]
        text = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in sorted(counts.items()))
        parts.append(f"{b}: {text}")
    noun = "obligation" if len(checked) == 1 else "obligations"
    print(f"\n{len(checked)} {noun}; " + "; ".join(parts) + f" ({wall:.1f} s)")
    lean_na = [c.results["lean"] for c in checked
               if c.results.get("lean", {}).get("status") == "not_available"]
    if lean_na:
        print(f"Lean results are not checked here: {lean_na[0].get('reason', 'no toolchain')}; "
              "`not available` is never a proof.")


def print_mutants(outcomes: list[MutantOutcome], verbose: bool = False) -> None:
    """Human-readable mutant results."""
    w = max([len("mutant")] + [len(o.mutant.id) for o in outcomes])
    for o in outcomes:
        verdict = "killed" if o.killed else "SURVIVED"
        print(f"{o.mutant.id:<{w}}  {verdict}")
        if o.error:
            print(f"    error: {o.error}")
        for t, r in o.results.items():
            print(f"    {t}: {_status_cell(r)}")
            if r.get("status") == "counterexample" and r.get("failed_conjunct"):
                print(f"      failed: {r['failed_conjunct']}")
            elif r.get("status") == "failed":
                for line in _failure_lines(r.get("detail", ""), "      ", verbose):
                    print(line)
    killed = sum(o.killed for o in outcomes)
    rate = 100.0 * killed / len(outcomes) if outcomes else 100.0
    print(f"\nkill rate: {killed}/{len(outcomes)} mutants ({rate:.0f}%)")


# ---- CLI --------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``mvtool prove``."""
    parser.add_argument("--backend", choices=["smt", "lean", "all"], default="all",
                        help="which backend(s) to run (default: all)")
    parser.add_argument("--only", nargs="+", action="extend", metavar="ID",
                        help="check only these obligations (with --mutants: these mutants)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--mutants", action="store_true",
                        help="check that every seeded bug of the model is refuted (SMT)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help=f"SMT time limit per obligation (default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--jobs", "-j", type=int, default=default_jobs(),
                        metavar="N", help="parallel SMT processes (default: one per core)")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show the full detail of a failed check (e.g. the undecided case)")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``mvtool prove``."""
    from mvtool.paths import ROOT

    if args.timeout <= 0:
        raise MvtoolError("--timeout must be positive")
    if args.jobs < 1:
        raise MvtoolError("--jobs must be at least 1")
    t0 = time.perf_counter()
    if args.mutants:
        outcomes = run_mutants(ROOT, only=args.only, timeout_s=args.timeout, jobs=args.jobs)
        killed = sum(o.killed for o in outcomes)
        if args.json:
            json.dump({"mutants": [{"id": o.mutant.id, "description": o.mutant.description,
                                    "killed": o.killed, "error": o.error,
                                    "targets": o.results} for o in outcomes],
                       "summary": {"mutants": len(outcomes), "killed": killed,
                                   "kill_rate": killed / len(outcomes) if outcomes else 1.0,
                                   "seconds": round(time.perf_counter() - t0, 3)}},
                      sys.stdout, indent=2)
            print()
        else:
            print_mutants(outcomes, args.verbose)
        return 0 if killed == len(outcomes) else 1
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    checked, project = prove(ROOT, backends=backends, only=args.only, timeout_s=args.timeout,
                             jobs=args.jobs)
    wall = time.perf_counter() - t0
    summary = summarise(checked, backends)
    if args.json:
        summary["seconds"] = round(wall, 3)
        json.dump({"obligations": [{"id": c.obligation.id, "title": c.obligation.title,
                                    "kind": c.obligation.kind, "group": c.obligation.group,
                                    "results": c.results} for c in checked],
                   "summary": summary}, sys.stdout, indent=2)
        print()
    else:
        print_matrix(checked, backends, project, wall, args.verbose)
    return 0 if summary["ok"] else 1
