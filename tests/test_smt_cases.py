"""Inductive-invariant obligations: the SMT backend splits the post-state of a register write
into the cases of its if-then-else conditions, proves each, and reports a counterexample of any
case as one of the whole statement (checked here through the extracted Python)."""

from __future__ import annotations

import dataclasses
import sys
import types
from typing import Any

import pytest
import z3
from mvtool.backends import smt
from mvtool.backends.smt_lia import lia_refutes, overapproximate
from mvtool.extract import extract_model, load_generated
from mvtool.leanprofile import load_project
from mvtool.paths import ROOT

WRITE = [("s", "State"), ("off", "BitVec 32"), ("v", "BitVec 32")]
PRESERVED = "wellFormed s = true → wellFormed (mmioWrite s off v) = true"
ACTIVE = "wellFormed s → isActive (mmioWrite s off v) → activationOk (mmioWrite s off v)"
#: bound per obligation: the single-statement check without the split ran out of 30 s
TIMEOUT_MS = 20000

TRANSPORT = "MicroVMM/Model/Transport.lean"
CHECKED = "(if activationOk s then { s with status := v } else markNeedsReset s)"


@pytest.fixture(scope="module")
def project():  # type: ignore[no-untyped-def]
    return load_project(ROOT)


@pytest.mark.parametrize("statement", [PRESERVED, ACTIVE])
def test_invariant_preservation_is_proved(project, statement: str) -> None:  # type: ignore[no-untyped-def]
    th = project.typecheck_statement(WRITE, statement, opens=["MicroVMM.Model"])
    r = smt.check_statement(project, th, timeout_ms=TIMEOUT_MS)
    assert r.status == "proved", r.to_json()
    assert r.cases > 1 and f"{r.cases} cases" in r.detail
    assert r.to_json()["cases"] == r.cases


def _build(module: types.ModuleType, value: Any, cls: type) -> Any:
    kwargs = {}
    for f in dataclasses.fields(cls):
        v = value[f.name]
        if isinstance(v, dict):
            v = _build(module, v, getattr(module, f.type) if isinstance(f.type, str) else f.type)
        kwargs[f.name] = v
    return cls(**kwargs)


def test_unchecked_activation_is_refuted_and_replays() -> None:
    text = (ROOT / TRANSPORT).read_text(encoding="utf-8")
    assert text.count(CHECKED) == 1
    mutant = load_project(ROOT, overrides={TRANSPORT: text.replace(CHECKED,
                                                                   "{ s with status := v }")})
    th = mutant.typecheck_statement(WRITE, PRESERVED, opens=["MicroVMM.Model"])
    r = smt.check_statement(mutant, th, timeout_ms=TIMEOUT_MS)
    assert r.status == "counterexample", r.to_json()
    assert set(r.counterexample) == {"s", "off", "v"}
    assert r.failed_conjunct == "wellFormed (mmioWrite s off v) = true"
    cex = r.counterexample

    # the mutant's own extraction: the statement is false on the counterexample
    twin = load_generated(extract_model(mutant, "unchecked_activation"), "unchecked_activation")
    try:
        s = _build(twin, cex["s"], twin.State)
        post = twin.mmioWrite(s, cex["off"], cex["v"])
        assert twin.wellFormed(s) is True
        assert twin.wellFormed(post) is False
        assert _build(twin, r.derived["mmioWrite s off v"], twin.State) == post
    finally:
        del sys.modules["unchecked_activation"]

    # the shipped model (py/mvtool/_extracted/model.py) keeps the same pre-state well-formed
    from mvtool._extracted import model

    s = _build(model, cex["s"], model.State)
    assert model.wellFormed(s) is True
    assert model.wellFormed(model.mmioWrite(s, cex["off"], cex["v"])) is True


# ---- the split itself, on a formula built directly --------------------------------------------

def _muxed(hyp_guard: z3.BoolRef | None = None) -> tuple[z3.BoolRef, z3.BoolRef, z3.ExprRef]:
    """A pre-state x, a post-state ``if k = 5 then x else w`` with ``w = x`` outside that case,
    and the negation of "a multiplier circuit's bound is preserved". Equivalence of the two
    multiplier circuits is what a SAT solver cannot do quickly; each case is trivial."""
    k, x, w, y = z3.BitVecs("k x w y", 32)

    def circuit(t: z3.BitVecRef) -> z3.BitVecRef:
        return (t * t + y) * (t + 7)

    post = z3.If(k == 5, x, w)
    guard = z3.Not(k == 5) if hyp_guard is None else z3.And(z3.Not(k == 5), hyp_guard)
    hyps = z3.And(z3.Implies(guard, w == x), z3.ULE(circuit(x), 1000))
    return hyps, z3.Not(z3.ULE(circuit(post), 1000)), post


def test_split_proves_what_a_direct_attempt_does_not() -> None:
    hyps, goal, post = _muxed()
    r, model, detail, cases = smt._solve([hyps], goal, [post], False, 20000)
    assert r == z3.unsat and model is None
    assert cases == 2 and "2 cases" in detail  # k = 5, and every other k
    # without the post-state term there is nothing to guide the split but the formula
    r2, _, _, _ = smt._solve([hyps], goal, [], False, 20000)
    assert r2 == z3.unsat


def test_split_counterexample_satisfies_the_whole_formula() -> None:
    k = z3.BitVec("k", 32)
    hyps, goal, post = _muxed(hyp_guard=k != 6)  # for k = 6 the post-state is arbitrary
    r, model, _, _ = smt._solve([hyps], goal, [post], False, 20000)
    assert r == z3.sat and model is not None
    assert z3.is_true(model.eval(z3.And(hyps, goal), model_completion=True))
    assert model.eval(k, model_completion=True).as_long() == 6


def test_case_literals_keep_the_split_exhaustive() -> None:
    hyps, goal, post = _muxed()
    root = smt._Case(z3.simplify(z3.And(hyps, goal)), [z3.simplify(post)], [], "")
    cases = root.splits()
    assert cases is not None
    # the cases' literals cover every value of k, and no two cases overlap
    cover = z3.Solver()
    cover.add(z3.Not(z3.Or(*[z3.And(*c.literals) for c in cases])))
    assert cover.check() == z3.unsat
    for i, a in enumerate(cases):
        for b in cases[i + 1:]:
            both = z3.Solver()
            both.add(*a.literals, *b.literals)
            assert both.check() == z3.unsat
    assert {c.path for c in cases} == {"k = 0x5; ", "k other; "}


# ---- the linear-integer over-approximation ----------------------------------------------------

def test_lia_proves_wrap_free_range_check() -> None:
    """``rangeInRam`` (64-bit, written without wrap) implies containment at 65 bits."""
    base, size, addr = z3.BitVecs("base size addr", 64)
    length = z3.BitVec("len", 32)
    ln = z3.ZeroExt(32, length)
    checked = z3.And(z3.ULE(base, addr), z3.ULE(ln, size), z3.ULE(addr - base, size - ln))
    e65 = z3.ZeroExt(1, addr) + z3.ZeroExt(33, length)
    inside = z3.ULE(e65, z3.ZeroExt(1, base) + z3.ZeroExt(1, size))
    assert lia_refutes(z3.simplify(z3.And(checked, z3.Not(inside))), 20000)
    # dropping the wrap guard makes it false; the over-approximation must not refute that
    wrapping = z3.And(z3.ULE(base, addr), z3.ULE(addr + ln, base + size))
    assert not lia_refutes(z3.And(wrapping, z3.Not(inside)), 20000)


@pytest.mark.parametrize("seed", range(3))
def test_lia_is_an_over_approximation(seed: int) -> None:
    """Every bit-vector model extends to a model of the translation: with the variables fixed
    to random values, the translation admits the true value of each term, and for the
    operators translated exactly no other value."""
    import random

    rnd = random.Random(seed)
    a, b = z3.BitVecs("a b", 16)
    exact = [a + b, a - b, -a, 3 * a, ~a, a & 0x0FF0, a | 0x8001, a ^ 0x00FF, z3.LShR(a, 3),
             a << 5, z3.URem(a, 7), z3.UDiv(a, 9), z3.Extract(11, 4, a), z3.Concat(a, b),
             z3.ZeroExt(4, a), z3.If(z3.ULT(a, b), a, b), a * 0xFFFF]
    abstracted = [a & b, a | b, z3.URem(a, b), a * b, z3.SignExt(2, a)]
    for _ in range(15):
        va, vb = rnd.randrange(1 << 16), rnd.randrange(1 << 16)
        fix = [a == va, b == vb]
        for t in exact + abstracted:
            val = z3.simplify(z3.substitute(t, (a, z3.BitVecVal(va, 16)),
                                            (b, z3.BitVecVal(vb, 16))))
            s = z3.Solver()
            s.add(overapproximate(z3.And(*fix, t == val)))
            assert s.check() == z3.sat, (t, va, vb)
            if any(t.eq(x) for x in exact):
                s = z3.Solver()
                s.add(overapproximate(z3.And(*fix, t != val)))
                assert s.check() == z3.unsat, (t, va, vb)


# ---- shared translations, persistence at the bottom of a split --------------------------------

def test_shared_translations_stay_per_project(project) -> None:  # type: ignore[no-untyped-def]
    """Two projects with the same definition names but different bodies: the translations one
    shares between its statements never answer for the other."""
    text = (ROOT / TRANSPORT).read_text(encoding="utf-8")
    mutant = load_project(ROOT, overrides={TRANSPORT: text.replace(CHECKED,
                                                                   "{ s with status := v }")})

    def check(p):  # type: ignore[no-untyped-def]
        th = p.typecheck_statement(WRITE, ACTIVE, opens=["MicroVMM.Model"])
        return smt.check_statement(p, th, timeout_ms=TIMEOUT_MS).status

    assert [check(project), check(mutant), check(project), check(mutant)] == [
        "proved", "counterexample", "proved", "counterexample"]


def test_bottom_of_the_split_persists_past_short_limits(project, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With the first limits far too short (a heavily loaded machine), a case with nothing left
    to split on is retried with growing limits instead of failing."""
    th = project.typecheck_statement(
        [("s", "State"), ("i", "BitVec 32"), ("d", "BitVec 16")],
        "wellFormed s → notifyAccepted s i → descIndexValid (queueAt s i) d →"
        " within s.ramBase s.ramSize (descEntryAddr (queueAt s i) d) 16",
        opens=["MicroVMM.Model", "MicroVMM.Spec"])
    for name in ("CASE_MS", "CASE_FINAL_LIA_MS", "CASE_FINAL_MS"):
        monkeypatch.setattr(smt, name, 1)
    r = smt.check_statement(project, th, timeout_ms=TIMEOUT_MS)
    assert r.status == "proved", r.to_json()
    assert "linear integer arithmetic" in r.detail
