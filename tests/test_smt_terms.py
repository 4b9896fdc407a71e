"""The C-API walks of :mod:`mvtool.backends.smt_terms` agree with the same walks written with
Z3's Python API, on the formulas of real catalogue statements and on hand-made terms."""

from __future__ import annotations

from typing import Any

import pytest
import z3
from mvtool.backends import smt
from mvtool.backends.smt_terms import TermTable
from mvtool.leanprofile import load_project
from mvtool.paths import ROOT

WRITE = [("s", "State"), ("off", "BitVec 32"), ("v", "BitVec 32")]
STATEMENTS = [
    "wellFormed s → activeLayoutValid (mmioWrite s off v)",  # 64-bit comparisons
    "(mmioWrite s off v).q0.num = s.q0.num ∨ (s.status &&& statusDriverOk) = 0",
]


@pytest.fixture(scope="module")
def project():  # type: ignore[no-untyped-def]
    return load_project(ROOT)


def _negated(project: Any, statement: str) -> tuple[z3.BoolRef, list[z3.ExprRef]]:
    """The simplified negated statement and its post-state terms, as the search sees them."""
    th = project.typecheck_statement(WRITE, statement, opens=["MicroVMM.Model"])
    seen: dict[str, Any] = {}

    def capture(assumptions, goal, leaves, quantified, timeout_ms):  # type: ignore[no-untyped-def]
        seen["f"] = z3.simplify(z3.And(*assumptions, goal))
        seen["leaves"] = smt._ite_leaves(z3.simplify(x) for x in leaves)
        return z3.unsat, None, "", 1

    real = smt._solve
    smt._solve = capture
    try:
        smt.check_statement(project, th)
    finally:
        smt._solve = real
    return seen["f"], seen["leaves"]


def _nodes(f: z3.ExprRef) -> list[z3.ExprRef]:
    out, seen, stack = [], set(), [f]
    while stack:
        e = stack.pop()
        if e.get_id() in seen:
            continue
        seen.add(e.get_id())
        out.append(e)
        if z3.is_app(e):
            stack.extend(e.children())
    return out


def _ids(t: TermTable, ids: list[int]) -> set[int]:
    return {t.expr(i).get_id() for i in ids}


@pytest.mark.parametrize("statement", STATEMENTS)
def test_walks_agree_with_the_python_api(project, statement: str) -> None:  # type: ignore[no-untyped-def]
    f, leaves = _negated(project, statement)
    t = TermTable(f.ctx)
    root = t.add(f)
    nodes = _nodes(f)
    assert {e.get_id() for e in nodes} == _ids(t, t.reachable(root))
    # every if-then-else condition, with its number of occurrences
    ref: dict[int, int] = {}
    for e in nodes:
        if z3.is_app_of(e, z3.Z3_OP_ITE):
            ref[e.arg(0).get_id()] = ref.get(e.arg(0).get_id(), 0) + 1
    assert ref
    assert {t.expr(c).get_id(): n for c, _, n in t.formula_ite_conditions(root)} == ref
    assert _ids(t, t.equalities(root)) == {e.get_id() for e in nodes if z3.is_eq(e)}
    # the wide comparisons the skeleton abstracts: as found by the walk it used to make
    ref_wide: set[int] = set()
    seen: set[int] = set()
    stack = [f]
    while stack:
        e = stack.pop()
        if e.get_id() in seen or not z3.is_app(e):
            continue
        seen.add(e.get_id())
        if (z3.is_bool(e) and e.num_args() == 2 and z3.is_bv(e.arg(0))
                and e.arg(0).size() >= smt.SKELETON_WIDTH):
            ref_wide.add(e.get_id())
            continue
        stack.extend(e.children())
    assert _ids(t, t.wide_atoms(root, smt.SKELETON_WIDTH)) == ref_wide
    skel = smt._skeleton(f)
    assert (skel is None) == (not ref_wide)
    if skel is not None:
        assert not {n.get_id() for n in _nodes(skel)} & ref_wide
    # the post-state's chains: same conditions as following the chains with the Python API
    chain: set[int] = set()
    stack = list(leaves)
    while stack:
        e = stack.pop()
        if z3.is_app_of(e, z3.Z3_OP_ITE):
            chain.add(e.arg(0).get_id())
            stack += [e.arg(1), e.arg(2)]
    conds = t.ite_conditions([t.add(x) for x in leaves])
    assert {t.expr(c).get_id() for c, _, _ in conds} == chain
    assert min(d for _, d, _ in conds) == 0


def test_constant_equalities_and_atoms() -> None:
    x, y = z3.BitVecs("x y", 16)
    b = z3.Bool("b")
    t = TermTable(x.ctx)
    cases = {x == 5: ("x", 5), z3.BitVecVal(7, 16) == x: ("x", 7), x + 1 == 5: None,
             x == y: None, b == z3.BoolVal(True): None}
    for atom, want in cases.items():
        got = t.const_eq(t.add(atom))
        assert (None if got is None else (str(t.expr(got[0])), got[1])) == want, atom
    cond = z3.Or(z3.And(x == 1, z3.Not(y == 2)), b)
    atoms = {str(t.expr(i)) for i in t.atoms_of(t.add(cond))}
    assert atoms == {"x == 1", "y == 2", "b"}
    assert t.width(t.add(x)) == 16 and t.width(t.add(b)) == 0


def test_terms_stay_alive_so_ids_are_not_reused() -> None:
    t = TermTable(z3.main_ctx())
    ids = []
    for k in range(50):
        a = z3.BitVec(f"tmp{k}", 8)
        ids.append(t.add(a + k))  # the only reference is the table's
    assert len(set(ids)) == len(ids)
    assert [str(t.expr(i)) for i in ids[:2]] == ["tmp0 + 0", "tmp1 + 1"]
