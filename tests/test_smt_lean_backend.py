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
