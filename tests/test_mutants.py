"""Mutation tests: every seeded bug of the model must be refuted by the SMT backend, and every
counterexample must be a real one.

"Real" is checked independently of Z3: a small concrete interpreter of the profile IR (below)
evaluates the obligation's statement on the counterexample's binder values — it must be false
with the mutant applied and true on the unmutated model (so the mutant, not the statement, is what
fails).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mvtool import catalogue as cat
from mvtool import gen, prove
from mvtool.errors import MvtoolError
from mvtool.leanprofile import ir
from mvtool.paths import ROOT

# ---- a concrete interpreter of the profile IR ---------------------------------------------------


class Interp:
    """Evaluate IR expressions on Python values: ints for bit-vectors, bools, dicts for
    structures (field -> value), ints (constructor index) for enumerations."""

    def __init__(self, project: Any):
        self.project = project

    def fields(self, ty: ir.Ty) -> list[str]:
        return [f for f, _, _ in self.project.structures[ty.name].fields]

    def value(self, x: Any, ty: ir.Ty) -> Any:
        """A counterexample value (nested dicts, enum names) in interpreter form."""
        if ty.kind == "struct":
            return {f: self.value(x[f], fty)
                    for f, fty, _ in self.project.structures[ty.name].fields}
        if ty.kind == "enum":
            return self.project.enums[ty.name].ctors.index(x) if isinstance(x, str) else int(x)
        if ty.is_boolish:
            return bool(x)
        return int(x) % (1 << ty.width)

    def ev(self, e: ir.Expr, env: dict[int, Any]) -> Any:
        if isinstance(e, ir.Var):
            return env[e.uid]
        if isinstance(e, (ir.BVLit, ir.BoolLit)):
            return e.value
        if isinstance(e, ir.EnumLit):
            return e.index
        if isinstance(e, ir.Call):
            d = self.project.defs[e.fn]
            args = [self.ev(a, env) for a in e.args]
            return self.ev(d.body, {p.uid: a for p, a in zip(d.params, args, strict=True)})
        if isinstance(e, ir.Field):
            return self.ev(e.expr, env)[e.name]
        if isinstance(e, ir.MkStruct):
            return dict(zip(self.fields(e.ty), (self.ev(f, env) for f in e.fields), strict=True))
        if isinstance(e, ir.Update):
            base = dict(self.ev(e.base, env))
            names = self.fields(e.ty)
            for i, u in e.updates.items():
                base[names[i]] = self.ev(u, env)
            return base
        if isinstance(e, ir.If):
            return self.ev(e.then if self.ev(e.cond, env) else e.els, env)
        if isinstance(e, ir.Match):
            k = self.ev(e.scrut, env)
            for idxs, arm in e.cases:
                if k in idxs:
                    return self.ev(arm, env)
            raise AssertionError("match not exhaustive")
        if isinstance(e, ir.Let):
            return self.ev(e.body, {**env, e.uid: self.ev(e.value, env)})
        if isinstance(e, ir.Prim):
            return self.prim(e, env)
        raise AssertionError(f"cannot interpret {type(e).__name__}")

    def prim(self, e: ir.Prim, env: dict[int, Any]) -> Any:
        op = e.op
        if op == "implies":  # short-circuit: the hypothesis may guard the conclusion
            return (not self.ev(e.args[0], env)) or bool(self.ev(e.args[1], env))
        a = [self.ev(x, env) for x in e.args]
        w = e.args[0].ty.width if e.args and e.args[0].ty.kind == "bv" else 0
        m = (1 << w) - 1 if w else 0
        if op == "bvadd":
            return (a[0] + a[1]) & m
        if op == "bvsub":
            return (a[0] - a[1]) & m
        if op == "bvmul":
            return (a[0] * a[1]) & m
        if op == "bvudiv":
            return 0 if a[1] == 0 else a[0] // a[1]
        if op == "bvurem":
            return a[0] if a[1] == 0 else a[0] % a[1]
        if op == "bvand":
            return a[0] & a[1]
        if op == "bvor":
            return a[0] | a[1]
        if op == "bvxor":
            return a[0] ^ a[1]
        if op == "bvnot":
            return ~a[0] & m
        if op == "bvneg":
            return -a[0] & m
        if op in ("bvshl", "bvshli", "bvlshr", "bvlshri"):
            k = e.params[0] if op.endswith("i") else a[1]
            if k >= w:
                return 0
            return (a[0] << k) & m if op.startswith("bvshl") else a[0] >> k
        if op == "concat":
            return (a[0] << e.args[1].ty.width) | a[1]
        if op == "extract":
            start, length = e.params
            return (a[0] >> start) & ((1 << length) - 1)
        if op == "zext":
            return a[0] & ((1 << e.params[0]) - 1)
        if op == "sext":
            n = e.params[0]
            v = a[0] - (1 << w) if a[0] >> (w - 1) else a[0]
            return v & ((1 << n) - 1)
        if op in ("ult", "ule", "ugt", "uge"):
            return {"ult": a[0] < a[1], "ule": a[0] <= a[1], "ugt": a[0] > a[1],
                    "uge": a[0] >= a[1]}[op]
        if op in ("slt", "sle"):
            s0 = a[0] - (1 << w) if a[0] >> (w - 1) else a[0]
            s1 = a[1] - (1 << w) if a[1] >> (w - 1) else a[1]
            return s0 < s1 if op == "slt" else s0 <= s1
        if op == "eq":
            return a[0] == a[1]
        if op == "ne":
            return a[0] != a[1]
        if op == "and":
            return bool(a[0]) and bool(a[1])
        if op == "or":
            return bool(a[0]) or bool(a[1])
        if op == "not":
            return not a[0]
        if op == "iff":
            return bool(a[0]) == bool(a[1])
        raise AssertionError(f"unknown primitive {op}")

    def statement(self, th: ir.Theorem, cex: dict[str, Any]) -> bool:
        env = {p.uid: self.value(cex[p.name], p.ty) for p in th.binders}
        return bool(self.ev(th.statement, env))


# ---- the tests ----------------------------------------------------------------------------------


def _model_texts() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((ROOT / "MicroVMM/Model").glob("*.lean"))}


MODEL_BEFORE = _model_texts()


@pytest.fixture(scope="module")
def outcomes() -> list[prove.MutantOutcome]:
    return prove.run_mutants(ROOT, timeout_s=120.0, jobs=2)


def test_interpreter_agrees_with_the_model_on_a_known_step() -> None:
    # The interpreter itself must be able to fail: a reset write must give status 0 and a
    # Status read must return what was stored.
    project = gen.load_model(ROOT)
    it = Interp(project)
    th = project.typecheck_statement(
        [("s", "State")], "mmioRead (mmioWrite s regStatus 1) regStatus = 1",
        namespace=cat.OBLIGATIONS_NAMESPACE, opens=gen.STATEMENT_OPENS)
    q = {"num": 0, "ready": False, "desc": 0, "driver": 0, "device": 0}
    s = {"deviceId": 2, "deviceFeatures": 0, "ramBase": 0, "ramSize": 1 << 20,
         "deviceFeaturesSel": 0, "driverFeatures": 0, "driverFeaturesSel": 0, "queueSel": 0,
         "q0": q, "q1": q, "interruptStatus": 0, "status": 0, "configGeneration": 0}
    assert it.statement(th, {"s": s}) is True
    assert it.statement(th, {"s": {**s, "status": 3}}) is False  # 3 -> 1 is not a step


def test_every_mutant_is_killed_with_real_counterexamples(
        outcomes: list[prove.MutantOutcome]) -> None:
    survivors = [o.mutant.id for o in outcomes if not o.killed]
    assert not survivors, f"mutants not refuted: {survivors}"
    base = gen.load_model(ROOT)
    base_theorems = prove.typecheck_all(base, list(cat.load_catalogue(ROOT).obligations))
    for o in outcomes:
        mutated = prove.mutant_project(ROOT, o.mutant)
        ths = prove.typecheck_all(mutated, [cat.load_catalogue(ROOT).by_id()[t]
                                            for t in o.mutant.targets])
        for target, result in o.results.items():
            cex = result["counterexample"]
            assert Interp(mutated).statement(ths[target], cex) is False, \
                f"{o.mutant.id}/{target}: counterexample does not refute the statement"
            assert Interp(base).statement(base_theorems[target], cex) is True, \
                f"{o.mutant.id}/{target}: the unmutated model fails on the same values"


def test_every_obligation_is_targeted_and_the_twin_exists() -> None:
    catalogue = cat.load_catalogue(ROOT)
    mutants = cat.load_mutants(ROOT, catalogue)
    targeted = {t for m in mutants.mutants for t in m.targets}
    assert targeted == set(catalogue.by_id())
    twin = mutants.by_id()["vulnerable_twin"]
    text = twin.apply(ROOT)["MicroVMM/Model/Transport.lean"]
    assert text != (ROOT / "MicroVMM/Model/Transport.lean").read_text()
    assert "queueConfigWritable" in text and "isConfiguring s && queueSelValid s &&" not in text


def test_mutant_edits_never_touch_disk(outcomes: list[prove.MutantOutcome]) -> None:
    # MODEL_BEFORE was read at import, before the fixture applied every mutant in memory.
    assert outcomes
    assert _model_texts() == MODEL_BEFORE


def test_find_text_that_does_not_occur_is_an_error() -> None:
    m = cat.Mutant(id="bogus", description="x", targets=["immut_queue_num"],
                   edits=[cat.Edit(file="MicroVMM/Model/Transport.lean",
                                   find="this text is not in the model", replace="")])
    with pytest.raises(MvtoolError, match="does not occur"):
        m.apply(ROOT)
    twice = cat.Mutant(id="twice", description="x", targets=["immut_queue_num"],
                       edits=[cat.Edit(file="MicroVMM/Model/Transport.lean",
                                       find="mmioWrite", replace="x")])
    with pytest.raises(MvtoolError, match="occurs .* times"):
        twice.apply(ROOT)


def test_mutant_file_with_unknown_target_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "tests/mutants").mkdir(parents=True)
    (tmp_path / "spec").mkdir()
    (tmp_path / cat.CATALOGUE_PATH).write_text((ROOT / cat.CATALOGUE_PATH).read_text())
    (tmp_path / cat.MUTANTS_PATH).write_text(
        "version: 1\nmutants:\n  - id: m\n    description: d\n    targets: [no_such]\n"
        "    edits:\n      - {file: MicroVMM/Model/State.lean, find: a, replace: b}\n")
    with pytest.raises(MvtoolError, match="unknown obligation 'no_such'"):
        cat.load_mutants(tmp_path, cat.load_catalogue(tmp_path))
