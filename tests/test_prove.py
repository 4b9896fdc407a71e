"""``mvtool prove``: the proof matrix, JSON output, exit status, counterexample display."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mvtool import catalogue as cat
from mvtool import prove
from mvtool.backends import lean as lean_backend
from mvtool.paths import ROOT

FAST = ["immut_queue_num", "reset_restores_initial_state", "read_ignores_unselected_queue"]


def _prove(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mvtool", "prove", *args], capture_output=True,
                          text=True, env={**os.environ, "MVTOOL_ROOT": str(root)}, timeout=300,
                          check=False)


def test_json_on_the_real_model() -> None:
    r = _prove(ROOT, "--json", "--only", *FAST)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [o["id"] for o in data["obligations"]] == FAST
    for o in data["obligations"]:
        assert o["results"]["smt"]["status"] == "proved"
        if not lean_backend.available():
            assert o["results"]["lean"]["status"] == "not_available"
            assert o["results"]["lean"]["reason"]
    assert data["summary"]["ok"] is True
    assert data["summary"]["smt"]["counts"] == {"proved": len(FAST)}


@pytest.mark.skipif(lean_backend.available(), reason="checks the footer shown without Lean")
def test_matrix_says_lean_is_not_checked_here() -> None:
    r = _prove(ROOT, "--only", FAST[0])
    assert r.returncode == 0, r.stderr
    assert "immut_queue_num" in r.stdout and "proved" in r.stdout
    assert "not available" in r.stdout
    assert "Lean results are not checked here" in r.stdout


def test_unknown_only_id_is_one_error_line() -> None:
    r = _prove(ROOT, "--only", "no_such_obligation")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "mvtool: error: unknown obligation id 'no_such_obligation' (see spec/invariants.yaml)"]


def _twin_repo(tmp_path: Path) -> Path:
    """A repository copy whose model on disk is the vulnerable twin."""
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "MicroVMM", root / "MicroVMM")
    shutil.copytree(ROOT / "spec", root / "spec")
    shutil.copytree(ROOT / "tests/mutants", root / "tests/mutants")
    twin = cat.load_mutants(root).by_id()["vulnerable_twin"]
    for rel, text in twin.apply(root).items():
        (root / rel).write_text(text)
    return root


def test_counterexample_makes_prove_fail_and_is_explained(tmp_path: Path) -> None:
    root = _twin_repo(tmp_path)
    r = _prove(root, "--backend", "smt", "--only", "immut_queue_num", "immut_queue_desc")
    assert r.returncode == 1, r.stderr
    out = r.stdout
    assert "counterexample" in out
    assert "failed: (mmioWrite s off v)." in out
    # the offset is named after its register, the pre-state shows registers and the status bits,
    # the post-state shows what changed
    assert "(Queue" in out
    assert "s (pre-state):" in out and "-- QueueSel" in out and "DRIVER_OK" in out
    assert "mmioWrite s off v:" in out and " -> " in out


def test_counterexample_json_fields(tmp_path: Path) -> None:
    root = _twin_repo(tmp_path)
    r = _prove(root, "--json", "--backend", "smt", "--only", "immut_queue_ready")
    assert r.returncode == 1
    smt = json.loads(r.stdout)["obligations"][0]["results"]["smt"]
    assert smt["status"] == "counterexample"
    s, post = smt["counterexample"]["s"], smt["derived"]["mmioWrite s off v"]
    assert s["status"] & 4  # DRIVER_OK set in the pre-state
    assert (s["q0"]["ready"], s["q1"]["ready"]) != (post["q0"]["ready"], post["q1"]["ready"])


def test_describe_counterexample_lists_only_changed_or_mentioned_fields() -> None:
    from mvtool import gen

    project = gen.load_model(ROOT)
    q = {"num": 8, "ready": True, "desc": 0x1000, "driver": 0x2000, "device": 0x3000}
    s = {"deviceId": 2, "deviceFeatures": 0, "ramBase": 0, "ramSize": 1 << 20,
         "deviceFeaturesSel": 0, "driverFeatures": 0, "driverFeaturesSel": 0, "queueSel": 0,
         "q0": q, "q1": q, "interruptStatus": 0, "status": 15, "configGeneration": 0}
    post = {**s, "q0": {**q, "num": 0}}
    lines = prove.describe_counterexample(project, {
        "counterexample": {"s": s, "off": 0x38, "v": 0},
        "derived": {"mmioWrite s off v": post},
        "failed_conjunct": "(mmioWrite s off v).q0.num = s.q0.num"})
    text = "\n".join(lines)
    assert "off = 0x38 (QueueNum)" in text
    assert "status = 0xf (ACKNOWLEDGE|DRIVER|DRIVER_OK|FEATURES_OK)" in text
    post_lines = text.split("mmioWrite s off v:")[1].splitlines()
    assert any("q0.num: 8 -> 0" in ln for ln in post_lines)
    assert any("q1.num:" in ln for ln in post_lines)  # mentioned by the conjunct (`.num`)
    assert not any("deviceId" in ln for ln in post_lines)  # unchanged, not mentioned


def test_brief_keeps_a_failure_readable() -> None:
    cond = "And(" + ", ".join(f"ULE(s.q0.desc + {k}, s.ramBase)" for k in range(200)) + ")"
    detail = f"solver returned unknown (timeout) in the case off = 0x70; v = 0xf; {cond} holds"
    text, cut = prove.brief(detail)
    assert cut and len(text) <= prove.BRIEF_CHARS
    assert text.startswith("solver returned unknown (timeout) in the case off = 0x70; v = 0xf; ")
    assert "\n" not in text
    short = "translation error: cannot translate Foo"
    assert prove.brief(short) == (short, False)


def test_failed_check_is_shown_in_two_lines_unless_verbose() -> None:
    """A time limit far too short for the obligation: `failed`, shown briefly; the full detail
    with --verbose and in --json."""
    args = ["--backend", "smt", "--only", "wf_write_active_layout_valid", "--timeout", "0.05"]
    r = _prove(ROOT, *args)
    assert r.returncode == 1, r.stderr
    lines = r.stdout.splitlines()
    at = lines.index("wf_write_active_layout_valid [smt]: failed")
    shown = lines[at + 1:lines.index("", at + 1)]
    assert 1 <= len(shown) <= 2 and all(len(x) <= prove.BRIEF_CHARS + 8 for x in shown)
    assert "solver returned" in shown[0]
    detail = json.loads(_prove(ROOT, "--json", *args).stdout)[
        "obligations"][0]["results"]["smt"]["detail"]
    assert detail.startswith("solver returned")
    verbose = _prove(ROOT, "--verbose", *args).stdout
    assert verbose.count("solver returned") == 1
