"""The SMT backend proves true statements and refutes false ones with counterexamples that
really falsify the statement when run through the extracted Python."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from mvtool.backends.smt import check_statement, check_theorem, evaluate
from mvtool.extract import extract_model, load_generated
from mvtool.leanprofile import load_project

GOOD = Path(__file__).parent / "fixtures" / "lean" / "good"
OBL = "MicroVMM.Obligations."


@pytest.fixture(scope="module")
def fixture():  # type: ignore[no-untyped-def]
    project = load_project(GOOD)
    module = load_generated(extract_model(project, "fixture_model"), "fixture_model")
    yield project, module
    del sys.modules["fixture_model"]


def build(module: types.ModuleType, value: Any, cls: type) -> Any:
    """A counterexample's nested dict as an extracted dataclass."""
    import dataclasses

    kwargs = {}
    for f in dataclasses.fields(cls):
        v = value[f.name]
        ftype = getattr(module, f.type, None) if isinstance(f.type, str) else f.type
        if isinstance(v, dict):
            v = build(module, v, ftype)
        elif isinstance(v, str):
            v = ftype[v]
        kwargs[f.name] = v
    return cls(**kwargs)


@pytest.mark.parametrize("name", ["frozen_q0", "ring_slot_bound"])
def test_true_theorems_are_proved(fixture, name: str) -> None:  # type: ignore[no-untyped-def]
    project, _ = fixture
    r = check_theorem(project, OBL + name)
    assert r.status == "proved", r.to_json()
    assert r.counterexample == {} and r.failed_conjunct is None


def test_false_theorem_counterexample_falsifies_it(fixture) -> None:  # type: ignore[no-untyped-def]
    project, m = fixture
    r = check_theorem(project, OBL + "sel_frozen_false")
    assert r.status == "counterexample", r.to_json()
    cex = r.counterexample
    assert set(cex) == {"d", "off", "v"}
    assert cex["d"]["phase"] in project.enums["MicroVMM.Model.Phase"].ctors
    d = build(m, cex["d"], m.Dev)
    post = m.mmioWrite(d, cex["off"], cex["v"])
    # the statement: d.live = true → post.q1 = d.q1 ∧ post.sel = d.sel
    assert m.live(d) is True
    assert not (post.q1 == d.q1 and post.sel == d.sel)
    # derived post-state is the one the extracted model computes
    derived = r.derived["mmioWrite d off v"]
    assert build(m, derived, m.Dev) == post
    assert r.failed_conjunct == ("(mmioWrite d off v).q1 = d.q1" if post.q1 != d.q1
                                 else "(mmioWrite d off v).sel = d.sel")
    json.dumps(r.to_json())


def test_failed_conjunct_names_the_false_one(fixture) -> None:  # type: ignore[no-untyped-def]
    project, m = fixture
    r = check_theorem(project, OBL + "read_magic_and_sel")
    assert r.status == "counterexample"
    assert r.failed_conjunct == "(mmioWrite d off v).sel = d.sel"
    d = build(m, r.counterexample["d"], m.Dev)
    assert m.mmioRead(d, 0) == 0x74726976
    assert m.mmioWrite(d, r.counterexample["off"], r.counterexample["v"]).sel != d.sel


def test_counterexample_respects_hypotheses(fixture) -> None:  # type: ignore[no-untyped-def]
    project, m = fixture
    r = check_theorem(project, OBL + "valid_preserved")
    assert r.status == "counterexample"
    d = build(m, r.counterexample["d"], m.Dev)
    assert m.valid(d.q0) and m.valid(d.q1)
    post = m.mmioWrite(d, r.counterexample["off"], r.counterexample["v"])
    assert not (m.valid(post.q0) and m.valid(post.q1))


def test_statement_with_forall_and_enum_binders(fixture) -> None:  # type: ignore[no-untyped-def]
    project, _ = fixture
    ok = project.typecheck_statement(
        [("p", "Phase")], "∀ q : Phase, p = q → phaseCode p = phaseCode q",
        opens=["MicroVMM.Model"])
    assert check_statement(project, ok).status == "proved"
    injective = project.typecheck_statement(
        [("p", "Phase")], "∀ q : Phase, phaseCode p = phaseCode q → p = q",
        opens=["MicroVMM.Model"])
    assert check_statement(project, injective).status == "proved"
    wrong = project.typecheck_statement(
        [("p", "Phase")], "∀ q : Phase, phaseCode p = phaseCode q → p ≠ q",
        opens=["MicroVMM.Model"])
    r = check_statement(project, wrong)
    assert r.status == "counterexample" and r.counterexample["p"] == r.counterexample["q"]
    bad2 = project.typecheck_statement(
        [("p", "Phase")], "phaseCode p ≠ 0x80", opens=["MicroVMM.Model"])
    r = check_statement(project, bad2)
    assert r.status == "counterexample" and r.counterexample == {"p": "failed"}


def test_nested_quantifier_in_hypothesis(fixture) -> None:  # type: ignore[no-untyped-def]
    project, _ = fixture
    th = project.typecheck_statement(
        [("x", "BitVec 8")], "(∀ y : BitVec 8, x ≤ y) → x = 0")
    assert check_statement(project, th).status == "proved"


def test_unknown_theorem_fails_cleanly(fixture) -> None:  # type: ignore[no-untyped-def]
    project, _ = fixture
    r = check_theorem(project, OBL + "nope")
    assert r.status == "failed" and "no such theorem" in r.detail


def test_evaluate_structures_and_enums(fixture) -> None:  # type: ignore[no-untyped-def]
    project, m = fixture
    init = evaluate(project, "MicroVMM.Model.Dev.init", [])
    assert init["phase"] == "reset" and init["q0"]["ready"] is False
    d = evaluate(project, "MicroVMM.Model.mmioWrite", [init, 0x084, 0x12345678])
    assert d["q0"]["desc"] == 0x12345678 << 32
    assert evaluate(project, "MicroVMM.Model.phaseCode", [m.Phase.featuresOk]) == 0xB
