"""The Lean backend: without `lake` every result is not_available; Lake diagnostics are
attributed to the theorem whose source range contains them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mvtool.backends import lean
from mvtool.leanprofile import load_project

GOOD = Path(__file__).parent / "fixtures" / "lean" / "good"
OBL = "MicroVMM.Obligations."


@pytest.mark.skipif(shutil.which("lake") is not None, reason="a Lean toolchain is installed")
def test_not_available_without_lake() -> None:
    project = load_project(GOOD)
    r = lean.check_theorem(project, OBL + "frozen_q0")
    assert r.status == "not_available" and "lake" in r.detail


def test_diagnostics_are_attributed_to_theorems() -> None:
    project = load_project(GOOD)
    th = project.theorems[OBL + "valid_preserved"]
    other = project.theorems[OBL + "ring_slot_bound"]
    output = (
        "✔ [3/7] Built MicroVMM.Model.Basic\n"
        f"error: ././{th.file}:{th.line + 2}:2: unsolved goals\n"
        "  d : Dev\n"
        "  ⊢ False\n"
        f"warning: ././{other.file}:{other.line}:8: declaration uses 'sorry'\n"
        "error: build failed\n")
    diags = lean.parse_diagnostics(output)
    assert [(d["file"], d["line"], d["severity"]) for d in diags] == [
        (th.file, th.line + 2, "error"), (other.file, other.line, "warning")]
    assert "⊢ False" in diags[0]["message"]
    results = lean.attribute(project, diags, 1, 1.0, output)
    assert results[th.name].status == "failed"
    assert results[th.name].detail == "unsolved goals"
    assert results[other.name].status == "failed"  # sorry is not a proof
    assert results[OBL + "frozen_q0"].status == "failed"  # the build as a whole failed
    ok = lean.attribute(project, [], 0, 1.0, "")
    assert {r.status for r in ok.values()} == {"proved"}


def test_proof_position_points_at_every_generated_proof() -> None:
    """The position leanclient is asked for a goal is the first proof token of each theorem."""
    from mvtool.backends.lean import proof_position
    from mvtool.leanprofile import load_project
    from mvtool.paths import ROOT

    project = load_project()
    theorems = [t for t in project.theorems.values() if t.file.startswith("MicroVMM/Obligations/")]
    assert len(theorems) >= 20
    for th in theorems:
        lines = (ROOT / th.file).read_text().splitlines()
        pos = proof_position("\n".join(lines), th.line)
        assert pos is not None, th.name
        line, col = pos
        assert lines[line][col:].startswith("mvvm_decide"), (th.name, lines[line])


def test_proof_position_on_one_line_and_missing_proofs() -> None:
    from mvtool.backends.lean import proof_position

    assert proof_position("theorem t (x : Bool) : x = x := by  decide\n", 1) == (0, 36)
    assert proof_position("theorem t (x : Bool) : x = x\n", 1) is None
