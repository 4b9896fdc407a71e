"""Lean backend: ``lake build`` where a Lean toolchain exists, diagnostics mapped to theorems.

Where ``lake`` is not on ``PATH`` every result is ``not_available`` — never a claim that a Lean
proof passed. Where it is, ``lake build`` runs once in the repository root; each diagnostic
``file:line:col: error|warning: message`` is attributed to the theorem whose source range
(its ``theorem`` line up to the next declaration of the file) contains the line. A theorem is
``proved`` when the build succeeded and no error and no ``sorry`` warning falls in its range.

For a theorem that failed, the proof goal at the start of its proof is fetched through
leanclient (``lake serve``), so a person or an agent patching the proof sees what was left to
prove; without leanclient the diagnostics alone are reported.

API::

    available() -> bool
    results = build(project, root=None, timeout_s=3600) -> dict[theorem name, LeanResult]
    r = check_theorem(project, name) -> LeanResult      # runs (and caches) one build
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvtool.leanprofile.project import Project

_DIAG = re.compile(
    r"^(?:(?P<sev1>error|warning|info): )?(?:\./)*(?P<file>[^\s:][^:]*\.lean):(?P<line>\d+):"
    r"(?P<col>\d+):(?: (?P<sev2>error|warning|info):)? ?(?P<msg>.*)$")


@dataclass
class LeanResult:
    """Outcome of the Lean check of one theorem."""

    theorem: str
    status: str  # "proved" | "failed" | "not_available"
    seconds: float = 0.0
    detail: str = ""
    diagnostics: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"theorem": self.theorem, "backend": "lean", "status": self.status,
                "seconds": round(self.seconds, 3), "detail": self.detail,
                "diagnostics": self.diagnostics}


def available() -> bool:
    """Whether a Lean toolchain (``lake``) is on PATH."""
    return shutil.which("lake") is not None


def parse_diagnostics(output: str) -> list[dict[str, Any]]:
    """Lean/Lake diagnostics in ``output`` (continuation lines appended to the message)."""
    diags: list[dict[str, Any]] = []
    for line in output.splitlines():
        m = _DIAG.match(line.strip())
        if m:
            sev = m.group("sev1") or m.group("sev2") or "error"
            diags.append({"file": m.group("file").lstrip("./"), "line": int(m.group("line")),
                          "col": int(m.group("col")), "severity": sev,
                          "message": m.group("msg").strip()})
        elif diags and line.startswith((" ", "\t")) and line.strip():
            diags[-1]["message"] += "\n" + line.strip()
    return diags


def theorem_ranges(project: Project) -> dict[str, list[tuple[int, int, str]]]:
    """file -> [(first line, last line, theorem name)]: each theorem's range ends before the next
    declaration (or theorem) of its file."""
    starts: dict[str, list[tuple[int, str | None]]] = {}
    for d in project.defs.values():
        starts.setdefault(d.file, []).append((d.line, None))
    for st in project.structures.values():
        starts.setdefault(st.file, []).append((st.line, None))
    for en in project.enums.values():
        starts.setdefault(en.file, []).append((en.line, None))
    for th in project.theorems.values():
        starts.setdefault(th.file, []).append((th.line, th.name))
    out: dict[str, list[tuple[int, int, str]]] = {}
    for file, items in starts.items():
        items.sort(key=lambda x: x[0])
        for i, (line, name) in enumerate(items):
            if name is not None:
                end = items[i + 1][0] - 1 if i + 1 < len(items) else 10**9
                out.setdefault(file, []).append((line, end, name))
    return out


def attribute(project: Project, diags: list[dict[str, Any]], returncode: int, seconds: float,
              output: str) -> dict[str, LeanResult]:
    """Per-theorem results from a finished build's diagnostics."""
    ranges = theorem_ranges(project)
    results = {name: LeanResult(name, "proved", seconds) for name in project.theorems}
    unattributed = []
    for d in diags:
        hit = None
        for lo, hi, name in ranges.get(d["file"], []):
            if lo <= d["line"] <= hi:
                hit = name
                break
        bad = d["severity"] == "error" or "sorry" in d["message"]
        if hit is None:
            if bad:
                unattributed.append(d)
            continue
        r = results[hit]
        r.diagnostics.append(d)
        if bad:
            r.status = "failed"
            r.detail = r.detail or d["message"].splitlines()[0]
    if returncode != 0:
        first = (unattributed[0]["message"].splitlines()[0] if unattributed
                 else (output.strip().splitlines() or ["lake build failed"])[-1])
        for r in results.values():
            if r.status == "proved":
                r.status = "failed"
                r.detail = f"lake build failed: {first}"
    return results


_cache: dict[str, dict[str, LeanResult]] = {}


def build(project: Project, root: Path | None = None, *, timeout_s: int = 3600
          ) -> dict[str, LeanResult]:
    """Run ``lake build`` (once per root and process) and attribute its diagnostics."""
    root = Path(root or project.root)
    if not available():
        return {name: LeanResult(name, "not_available", detail="no Lean toolchain (lake) on PATH")
                for name in project.theorems}
    key = str(root.resolve())
    if key not in _cache:
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(["lake", "build"], cwd=root, capture_output=True, text=True,
                                  timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            return {name: LeanResult(name, "failed", float(timeout_s),
                                     detail=f"lake build timed out after {timeout_s} s")
                    for name in project.theorems}
        output = proc.stdout + "\n" + proc.stderr
        _cache[key] = attribute(project, parse_diagnostics(output), proc.returncode,
                                time.perf_counter() - t0, output)
        attach_goals(project, _cache[key], root)
    return _cache[key]


def proof_position(source: str, theorem_line: int) -> tuple[int, int] | None:
    """0-based (line, character) of the first proof token after ``:= by`` of the theorem that
    starts at 1-based ``theorem_line``, or None."""
    lines = source.splitlines()
    for i in range(theorem_line - 1, len(lines)):
        col = lines[i].find(":= by")
        if col >= 0:
            rest = lines[i][col + len(":= by"):]
            if rest.strip():
                return i, col + len(":= by") + (len(rest) - len(rest.lstrip()))
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines):
                return j, len(lines[j]) - len(lines[j].lstrip())
            return None
    return None


def attach_goals(project: Project, results: dict[str, LeanResult], root: Path) -> None:
    """Add the goal at the start of each failed theorem's proof (leanclient, ``lake serve``).
    Best effort: without leanclient, or if the server fails, results keep their diagnostics."""
    failed = [r for r in results.values() if r.status == "failed"]
    if not failed:
        return
    try:
        from leanclient import LeanLSPClient
    except ImportError:
        return
    try:
        client = LeanLSPClient(str(root))
    except Exception as exc:  # noqa: BLE001 - the goals are an extra; the build result stands
        for r in failed:
            r.detail += f" (goal unavailable: lake serve: {exc})"
        return
    try:
        for r in failed:
            th = project.theorems[r.theorem]
            pos = proof_position((root / th.file).read_text(), th.line)
            if pos is None:
                continue
            goal = client.get_goal(th.file, *pos)
            if goal and goal.get("goals"):
                r.diagnostics.append({"file": th.file, "line": pos[0] + 1, "col": pos[1],
                                      "severity": "goal", "message": "\n".join(goal["goals"])})
    finally:
        client.close()


def check_theorem(project: Project, theorem_name: str) -> LeanResult:
    """The Lean result of one theorem (runs the build if needed)."""
    results = build(project)
    return results.get(theorem_name) or LeanResult(theorem_name, "failed",
                                                   detail="no such theorem")
