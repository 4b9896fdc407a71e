"""`mvtool axioms`: the trusted-base scan finds what it must, on the real tree and on planted
faults in a copy of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mvtool import paths
from mvtool.audit import audit, strip_comments_and_strings


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in ("MicroVMM", "spec", "shim", "tests"):
        shutil.copytree(paths.ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.o"))
    shutil.copy(paths.ROOT / "MicroVMM.lean", tmp_path / "MicroVMM.lean")
    return tmp_path


def test_real_tree_is_clean() -> None:
    report = audit()
    assert report["ok"], report["problems"]
    names = {a["name"] for a in report["axioms"]}
    assert "MicroVMM.FFI.rangeCheck_ok_iff" in names
    assert all(a["evidence"] for a in report["axioms"])
    symbols = {e["note"] for e in report["externs"]}
    assert "C symbol mv_range_check" in symbols
    assert not [m for m in report["markers"] if m["kind"] in ("sorry", "admit")]


def test_planted_sorry_is_found(tree: Path) -> None:
    target = tree / "MicroVMM" / "Spec" / "Lifecycle.lean"
    text = target.read_text()
    target.write_text(text + "\ntheorem cheat : False := by sorry\n")
    report = audit(tree)
    assert not report["ok"]
    assert any("proof hole" in p and "Lifecycle.lean" in p for p in report["problems"])


def test_sorry_in_a_comment_is_not_counted(tree: Path) -> None:
    target = tree / "MicroVMM" / "Spec" / "Lifecycle.lean"
    target.write_text(target.read_text() + "\n-- sorry, not a proof hole\n/- sorry -/\n")
    assert audit(tree)["ok"]


def test_axiom_without_contract_is_a_problem(tree: Path) -> None:
    target = tree / "MicroVMM" / "FFI" / "Shim.lean"
    text = target.read_text().replace("end MicroVMM.FFI",
                                      "axiom trustMe : 1 = 2\n\nend MicroVMM.FFI")
    target.write_text(text)
    report = audit(tree)
    assert any("MicroVMM.FFI.trustMe" in p and "nothing discharges it" in p
               for p in report["problems"])


def test_extern_without_c_definition_is_a_problem(tree: Path) -> None:
    target = tree / "MicroVMM" / "FFI" / "Shim.lean"
    target.write_text(target.read_text().replace('"mv_lean_mem_size"', '"mv_lean_gone"'))
    report = audit(tree)
    assert any("mv_lean_gone is not defined" in p for p in report["problems"])


def test_missing_evidence_is_a_problem(tree: Path) -> None:
    contract = tree / "spec" / "ffi_contract.yaml"
    contract.write_text(contract.read_text().replace("test_range_check_boundaries",
                                                     "test_that_does_not_exist"))
    report = audit(tree)
    assert any("test_that_does_not_exist does not exist" in p for p in report["problems"])


def test_comment_stripping_keeps_lines() -> None:
    text = 'a /- x\n /- nested -/ y -/ b -- sorry\n"sorry" c'
    clean = strip_comments_and_strings(text)
    assert clean.count("\n") == text.count("\n")
    assert "sorry" not in clean and "a" in clean and "c" in clean


def test_cli_json() -> None:
    out = subprocess.run([sys.executable, "-m", "mvtool", "axioms", "--json"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert '"lean_checked": false' in out.stdout
