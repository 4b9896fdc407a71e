"""SMT backend: translate profile IR to Z3 bit-vector terms and prove theorem statements.

Encoding: ``BitVec n`` -> Z3 bit-vector of width n with Lean's semantics (``x / 0 = 0`` although
SMT-LIB's ``bvudiv`` gives all-ones; ``x % 0 = x`` as in SMT-LIB; shifts by any amount, including
amounts of another width; ``extractLsb'`` reading zeros past the top); ``Bool``/``Prop`` -> Z3
Bool; an enumeration with k constructors -> bit-vector of ⌈log₂ k⌉ bits (free values constrained
to < k); a structure -> Python tuple of its fields' terms (ite and equality field-wise).
Definitions are inlined; translations are memoised per (definition, argument terms).

A theorem is *proved* when the negation of its statement is unsatisfiable with every binder (every
field of a structure binder) a free constant; leading ``∀`` and hypotheses (``→``) of the
statement become free constants and assumptions.

API::

    r = check_theorem(project, "MicroVMM.Obligations.foo", timeout_ms=30000) -> SmtResult
    r = check_statement(project, theorem) -> SmtResult      # an ir.Theorem, e.g. from
                                                             # project.typecheck_statement
    value = evaluate(project, "MicroVMM.Model.mmioRead", [state, 0x70])
        # concrete evaluation through Z3; values: int (bit-vectors), bool, str (enum
        # constructor), dict field -> value (structures); arguments may also be IntEnum members
        # and objects with the fields as attributes (extracted dataclasses)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import z3

from mvtool.leanprofile import ir
from mvtool.leanprofile.project import Project

Value = Any  # z3.ExprRef | tuple[Value, ...]


class TranslationError(Exception):
    """The IR contains something the SMT translation does not handle."""


def _ite(c: z3.BoolRef, a: Value, b: Value) -> Value:
    if isinstance(a, tuple):
        return tuple(_ite(c, x, y) for x, y in zip(a, b, strict=True))
    if z3.is_true(c):
        return a
    if z3.is_false(c):
        return b
    if a.eq(b):
        return a
    return z3.If(c, a, b)


def _eq(a: Value, b: Value) -> z3.BoolRef:
    if isinstance(a, tuple):
        return z3.And(*[_eq(x, y) for x, y in zip(a, b, strict=True)])
    return a == b


def _key(v: Value) -> Any:
    if isinstance(v, tuple):
        return tuple(_key(x) for x in v)
    return v.get_id()


def _shift(a: z3.BitVecRef, b: z3.BitVecRef, left: bool) -> z3.BitVecRef:
    """``a <<< b`` / ``a >>> b`` for bit-vectors of possibly different widths (amount = value
    of b as a natural number; ≥ width(a) gives 0, as in Lean and SMT-LIB)."""
    n, m = a.size(), b.size()
    if m == n:
        return a << b if left else z3.LShR(a, b)
    if m < n:
        b2 = z3.ZeroExt(n - m, b)
        return a << b2 if left else z3.LShR(a, b2)
    a2 = z3.ZeroExt(m - n, a)
    r = a2 << b if left else z3.LShR(a2, b)
    return z3.Extract(n - 1, 0, r)


def _extract(a: z3.BitVecRef, start: int, length: int) -> z3.BitVecRef:
    """Lean ``extractLsb' start length a`` = ``ofNat length (a.toNat >>> start)``."""
    n = a.size()
    if start >= n:
        return z3.BitVecVal(0, length)
    avail = n - start
    if length <= avail:
        return z3.Extract(start + length - 1, start, a)
    return z3.ZeroExt(length - avail, z3.Extract(n - 1, start, a))


def _resize(a: z3.BitVecRef, n: int, signed: bool) -> z3.BitVecRef:
    w = a.size()
    if n == w:
        return a
    if n < w:
        return z3.Extract(n - 1, 0, a)
    return z3.SignExt(n - w, a) if signed else z3.ZeroExt(n - w, a)


class Translator:
    """Translates IR expressions to Z3 values; one per proof/evaluation."""

    def __init__(self, project: Project):
        self.project = project
        self.memo: dict[tuple[str, Any], Value] = {}
        self.names: set[str] = set()
        self.record: dict[int, Value] | None = None

    # ---- free constants -----------------------------------------------------------------------
    def fresh_name(self, name: str) -> str:
        out, k = name, 1
        while out in self.names:
            out = f"{name}_{k}"
            k += 1
        self.names.add(out)
        return out

    def free(self, name: str, ty: ir.Ty, domain: list[z3.BoolRef]) -> Value:
        """Free constant(s) of type ``ty``; enumeration domain constraints go to ``domain``."""
        if ty.kind == "bv":
            return z3.BitVec(self.fresh_name(name), ty.width)
        if ty.is_boolish:
            return z3.Bool(self.fresh_name(name))
        if ty.kind == "enum":
            en = self.project.enums[ty.name]
            c = z3.BitVec(self.fresh_name(name), en.width)
            if len(en.ctors) < (1 << en.width):
                domain.append(z3.ULT(c, len(en.ctors)))
            return c
        st = self.project.structures[ty.name]
        return tuple(self.free(f"{name}.{f}", fty, domain) for f, fty, _ in st.fields)

    # ---- expressions --------------------------------------------------------------------------
    def tr(self, e: ir.Expr, env: dict[int, Value]) -> Value:
        v = self._tr(e, env)
        if self.record is not None and id(e) in self.record:
            self.record[id(e)] = v
        return v

    def _tr(self, e: ir.Expr, env: dict[int, Value]) -> Value:
        if isinstance(e, ir.Var):
            return env[e.uid]
        if isinstance(e, ir.BVLit):
            return z3.BitVecVal(e.value, e.ty.width)
        if isinstance(e, ir.BoolLit):
            return z3.BoolVal(e.value)
        if isinstance(e, ir.EnumLit):
            return z3.BitVecVal(e.index, self.project.enums[e.ty.name].width)
        if isinstance(e, ir.Call):
            args = [self.tr(a, env) for a in e.args]
            key = (e.fn, tuple(_key(a) for a in args))
            hit = self.memo.get(key)
            if hit is None:
                d = self.project.defs[e.fn]
                hit = self.tr(d.body, {p.uid: a for p, a in zip(d.params, args, strict=True)})
                self.memo[key] = hit
            return hit
        if isinstance(e, ir.Field):
            assert e.expr is not None
            return self.tr(e.expr, env)[e.index]
        if isinstance(e, ir.MkStruct):
            return tuple(self.tr(f, env) for f in e.fields)
        if isinstance(e, ir.Update):
            assert e.base is not None
            base = list(self.tr(e.base, env))
            for i, u in e.updates.items():
                base[i] = self.tr(u, env)
            return tuple(base)
        if isinstance(e, ir.If):
            assert e.cond is not None and e.then is not None and e.els is not None
            c = self.tr(e.cond, env)
            if z3.is_true(c):
                return self.tr(e.then, env)
            if z3.is_false(c):
                return self.tr(e.els, env)
            return _ite(c, self.tr(e.then, env), self.tr(e.els, env))
        if isinstance(e, ir.Match):
            assert e.scrut is not None
            s = self.tr(e.scrut, env)
            if z3.is_bv_value(s):
                k = s.as_long()
                for idxs, arm in e.cases:
                    if k in idxs:
                        return self.tr(arm, env)
            result = self.tr(e.cases[-1][1], env)
            for idxs, arm in reversed(e.cases[:-1]):
                cond = z3.Or(*[s == i for i in idxs]) if len(idxs) > 1 else s == idxs[0]
                result = _ite(cond, self.tr(arm, env), result)
            return result
        if isinstance(e, ir.Let):
            assert e.value is not None and e.body is not None
            env2 = dict(env)
            env2[e.uid] = self.tr(e.value, env)
            return self.tr(e.body, env2)
        if isinstance(e, ir.Prim):
            return self.prim(e, [self.tr(a, env) for a in e.args])
        if isinstance(e, ir.Forall):
            assert e.body is not None
            domain: list[z3.BoolRef] = []
            env2 = dict(env)
            consts = []
            for p in e.params:
                v = self.free(p.name, p.ty, domain)
                env2[p.uid] = v
                consts += _leaves(v)
            body = self.tr(e.body, env2)
            return z3.ForAll(consts, z3.Implies(z3.And(*domain), body) if domain else body)
        raise TranslationError(f"cannot translate {type(e).__name__}")

    def prim(self, e: ir.Prim, a: list[Value]) -> Value:
        op = e.op
        if op == "bvadd":
            return a[0] + a[1]
        if op == "bvsub":
            return a[0] - a[1]
        if op == "bvmul":
            return a[0] * a[1]
        if op == "bvudiv":
            w = e.ty.width
            return z3.If(a[1] == 0, z3.BitVecVal(0, w), z3.UDiv(a[0], a[1]))
        if op == "bvurem":
            return z3.If(a[1] == 0, a[0], z3.URem(a[0], a[1]))
        if op == "bvand":
            return a[0] & a[1]
        if op == "bvor":
            return a[0] | a[1]
        if op == "bvxor":
            return a[0] ^ a[1]
        if op == "bvnot":
            return ~a[0]
        if op == "bvneg":
            return -a[0]
        if op in ("bvshl", "bvlshr"):
            return _shift(a[0], a[1], op == "bvshl")
        if op in ("bvshli", "bvlshri"):
            k, w = e.params[0], e.ty.width
            if k >= w:
                return z3.BitVecVal(0, w)
            return a[0] << k if op == "bvshli" else z3.LShR(a[0], k)
        if op == "concat":
            return z3.Concat(a[0], a[1])
        if op == "extract":
            return _extract(a[0], e.params[0], e.params[1])
        if op in ("zext", "sext"):
            return _resize(a[0], e.params[0], op == "sext")
        if op == "ult":
            return z3.ULT(a[0], a[1])
        if op == "ule":
            return z3.ULE(a[0], a[1])
        if op == "ugt":
            return z3.UGT(a[0], a[1])
        if op == "uge":
            return z3.UGE(a[0], a[1])
        if op == "slt":
            return a[0] < a[1]
        if op == "sle":
            return a[0] <= a[1]
        if op == "eq":
            return _eq(a[0], a[1])
        if op == "ne":
            return z3.Not(_eq(a[0], a[1]))
        if op == "and":
            return z3.And(a[0], a[1])
        if op == "or":
            return z3.Or(a[0], a[1])
        if op == "not":
            return z3.Not(a[0])
        if op == "implies":
            return z3.Implies(a[0], a[1])
        if op == "iff":
            return a[0] == a[1]
        raise TranslationError(f"unknown primitive {op}")


def _leaves(v: Value) -> list[z3.ExprRef]:
    if isinstance(v, tuple):
        out = []
        for x in v:
            out += _leaves(x)
        return out
    return [v]


# ---- Python values <-> Z3 ---------------------------------------------------------------------

def to_python(project: Project, v: Value, ty: ir.Ty, model: z3.ModelRef | None = None) -> Any:
    """A Z3 value (evaluated in ``model`` if given) as a Python value."""
    if ty.kind == "struct":
        st = project.structures[ty.name]
        return {f: to_python(project, x, fty, model)
                for (f, fty, _), x in zip(st.fields, v, strict=True)}
    t = model.eval(v, model_completion=True) if model is not None else z3.simplify(v)
    if ty.is_boolish:
        if z3.is_true(t):
            return True
        if z3.is_false(t):
            return False
        raise TranslationError(f"not a concrete Bool: {t}")
    if not z3.is_bv_value(t):
        raise TranslationError(f"not a concrete value: {t}")
    k = t.as_long()
    if ty.kind == "enum":
        ctors = project.enums[ty.name].ctors
        return ctors[k] if k < len(ctors) else f"<invalid {k}>"
    return k


def from_python(project: Project, x: Any, ty: ir.Ty) -> Value:
    """A Python value (see :func:`evaluate`) as a Z3 value of type ``ty``."""
    if ty.kind == "struct":
        st = project.structures[ty.name]
        get = (lambda f: x[f]) if isinstance(x, dict) else (lambda f: getattr(x, f))
        return tuple(from_python(project, get(f), fty) for f, fty, _ in st.fields)
    if ty.is_boolish:
        return z3.BoolVal(bool(x))
    if ty.kind == "enum":
        en = project.enums[ty.name]
        idx = en.ctors.index(x) if isinstance(x, str) else int(x)
        if not 0 <= idx < len(en.ctors):
            raise ValueError(f"{x!r} is not a constructor of {en.name}")
        return z3.BitVecVal(idx, en.width)
    return z3.BitVecVal(int(x) % (1 << ty.width), ty.width)


def evaluate(project: Project, def_name: str, args: list[Any]) -> Any:
    """Evaluate a profile ``def`` on concrete arguments through the Z3 translation."""
    d = project.defs[def_name]
    if len(args) != len(d.params):
        raise ValueError(f"{def_name} takes {len(d.params)} arguments, given {len(args)}")
    tr = Translator(project)
    env = {p.uid: from_python(project, a, p.ty) for p, a in zip(d.params, args, strict=True)}
    return to_python(project, tr.tr(d.body, env), d.ret)


# ---- proving ----------------------------------------------------------------------------------

@dataclass
class SmtResult:
    """Outcome of one SMT check (see the module docstring)."""

    theorem: str
    status: str  # "proved" | "counterexample" | "failed"
    seconds: float
    detail: str = ""
    counterexample: dict[str, Any] = field(default_factory=dict)
    derived: dict[str, Any] = field(default_factory=dict)
    failed_conjunct: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"theorem": self.theorem, "backend": "smt", "status": self.status,
                "seconds": round(self.seconds, 4), "detail": self.detail,
                "counterexample": self.counterexample, "derived": self.derived,
                "failed_conjunct": self.failed_conjunct}


def _conjuncts(e: ir.Expr) -> list[ir.Expr]:
    if isinstance(e, ir.Prim) and e.op == "and" and e.ty == ir.PROP:
        return _conjuncts(e.args[0]) + _conjuncts(e.args[1])
    return [e]


def _has_forall(e: ir.Expr) -> bool:
    if isinstance(e, ir.Forall):
        return True
    for attr in ("args", "fields"):
        for x in getattr(e, attr, ()) or ():
            if _has_forall(x):
                return True
    for attr in ("expr", "cond", "then", "els", "value", "body", "base", "scrut"):
        x = getattr(e, attr, None)
        if isinstance(x, ir.Expr) and _has_forall(x):
            return True
    if isinstance(e, ir.Match):
        return any(_has_forall(a) for _, a in e.cases)
    if isinstance(e, ir.Update):
        return any(_has_forall(u) for u in e.updates.values())
    return False


def _struct_calls(e: ir.Expr, out: list[ir.Call]) -> None:
    if isinstance(e, ir.Forall):
        return
    if isinstance(e, ir.Call) and e.ty.kind == "struct":
        out.append(e)
    children: list[ir.Expr] = []
    for attr in ("args", "fields"):
        children += list(getattr(e, attr, ()) or ())
    for attr in ("expr", "cond", "then", "els", "value", "body", "base", "scrut"):
        x = getattr(e, attr, None)
        if isinstance(x, ir.Expr):
            children.append(x)
    if isinstance(e, ir.Match):
        children += [a for _, a in e.cases]
    if isinstance(e, ir.Update):
        children += list(e.updates.values())
    for c in children:
        _struct_calls(c, out)


#: first attempt without case splitting (ms); after that the problem is split by cases
DIRECT_MS = 2000


def _subst(v: Value, subst: list[tuple[z3.ExprRef, z3.ExprRef]]) -> Value:
    if not subst:
        return v
    if isinstance(v, tuple):
        return tuple(_subst(x, subst) for x in v)
    return z3.substitute(v, *subst)


def _eq_atoms(f: z3.ExprRef, consts: list[z3.ExprRef]) -> dict[int, dict[int, z3.ExprRef]]:
    """For each constant (by id) the values it is compared with by ``=`` -> the atom."""
    ids = {c.get_id() for c in consts}
    out: dict[int, dict[int, z3.ExprRef]] = {}
    seen: set[int] = set()
    stack = [f]
    while stack:
        e = stack.pop()
        if e.get_id() in seen or not z3.is_app(e):
            continue
        seen.add(e.get_id())
        if z3.is_eq(e) and e.num_args() == 2:
            a, b = e.arg(0), e.arg(1)
            for x, y in ((a, b), (b, a)):
                if x.get_id() in ids and z3.is_bv_value(y):
                    out.setdefault(x.get_id(), {})[y.as_long()] = e
        stack.extend(e.children())
    return out


#: direct attempt per case before splitting it further (ms), and the depth of nested splits
CASE_MS = 500
MAX_SPLIT_DEPTH = 3
#: how many split candidates are probed, and for how long per case (ms)
PROBE_CANDIDATES = 4
PROBE_MS = 200


def _solve(assumptions: list[z3.BoolRef], goal: z3.BoolRef, consts: list[z3.ExprRef],
           quantified: bool, timeout_ms: int
           ) -> tuple[Any, z3.ModelRef | None, list[tuple[z3.ExprRef, z3.ExprRef]], str]:
    """Check ``assumptions ∧ goal``. A direct attempt first; if it is inconclusive, split on
    the binder compared with the most constants (a register offset, the status register): one
    case per constant (substituted and simplified) and one for every other value, recursively
    up to MAX_SPLIT_DEPTH. Returns (result, model, substitution of the satisfiable case, detail).
    """
    deadline = time.perf_counter() + timeout_ms / 1000
    stats = {"cases": 0}

    def left_ms() -> int:
        return int((deadline - time.perf_counter()) * 1000)

    def run(formulas: list[z3.BoolRef], ms: int) -> tuple[Any, z3.ModelRef | None, str]:
        stats["cases"] += 1
        solver = z3.Solver() if quantified else z3.SolverFor("QF_BV")
        solver.set("timeout", max(1, min(ms, left_ms())))
        solver.add(*formulas)
        r = solver.check()
        if r == z3.sat:
            return r, solver.model(), ""
        return r, None, ("" if r == z3.unsat else
                         f"solver returned unknown ({solver.reason_unknown()})")

    def split(formula: z3.BoolRef, const: z3.ExprRef, atoms: dict[int, z3.ExprRef]
              ) -> list[tuple[str, z3.BoolRef, list[tuple[z3.ExprRef, z3.ExprRef]]]]:
        """The cases of ``const``: one per compared value, and the rest."""
        out = []
        for v in sorted(atoms):
            sub = [(const, z3.BitVecVal(v, const.size()))]
            out.append((f"{const} = {v:#x}", z3.simplify(z3.substitute(formula, *sub)), sub))
        others = z3.simplify(z3.And(
            z3.substitute(formula, *[(a, z3.BoolVal(False)) for a in atoms.values()]),
            *[const != v for v in sorted(atoms)]))
        out.append((f"{const} other", others, []))
        return out

    def cases(formula: z3.BoolRef, depth: int, first_ms: int, path: str
              ) -> tuple[Any, z3.ModelRef | None, list[tuple[z3.ExprRef, z3.ExprRef]], str]:
        if z3.is_false(formula):
            return z3.unsat, None, [], ""
        last = depth >= MAX_SPLIT_DEPTH
        r, model, detail = run([formula], left_ms() if last else first_ms)
        if r != z3.unknown or last or left_ms() <= 0:
            return r, model, [], (f"{path}{detail}" if detail and path else detail)
        atoms = _eq_atoms(formula, consts)
        if not atoms:
            r, model, detail = run([formula], left_ms())
            return r, model, [], (f"{path}{detail}" if detail and path else detail)
        # probe the candidates briefly; keep the one that leaves the fewest cases open
        best: list[tuple[str, z3.BoolRef, list[tuple[z3.ExprRef, z3.ExprRef]]]] | None = None
        ranked = sorted(atoms, key=lambda k: (-len(atoms[k]), k))[:PROBE_CANDIDATES]
        for cid in ranked:
            const = next(c for c in consts if c.get_id() == cid)
            open_cases = []
            for label, f, sub in split(formula, const, atoms[cid]):
                if z3.is_false(f):
                    continue
                r, model, _ = run([f], PROBE_MS)
                if r == z3.sat:
                    return r, model, sub, ""
                if r == z3.unknown:
                    open_cases.append((label, f, sub))
            if not open_cases:
                return z3.unsat, None, [], ""
            if best is None or len(open_cases) < len(best):
                best = open_cases
            if left_ms() <= 0:
                break
        assert best is not None
        for label, f, sub in best:
            r, model, inner, detail = cases(f, depth + 1, CASE_MS, f"{path}{label}; ")
            if r != z3.unsat:
                return r, model, sub + inner, detail
        return z3.unsat, None, [], ""

    formula = z3.And(*assumptions, goal)
    if quantified:
        r, model, detail = run([formula], timeout_ms)
        return r, model, [], detail
    r, model, sub, detail = cases(formula, 0, min(timeout_ms, DIRECT_MS), "")
    if r == z3.unsat and stats["cases"] > 1:
        detail = f"proved by case split ({stats['cases']} solver calls)"
    return r, model, sub, detail


def check_theorem(project: Project, theorem_name: str, *, timeout_ms: int = 30000) -> SmtResult:
    """Prove (or refute) the statement of a project theorem with Z3."""
    th = project.theorems.get(theorem_name)
    if th is None:
        return SmtResult(theorem_name, "failed", 0.0, detail="no such theorem")
    return check_statement(project, th, timeout_ms=timeout_ms)


def check_statement(project: Project, th: ir.Theorem, *, timeout_ms: int = 30000) -> SmtResult:
    """Prove (or refute) an :class:`ir.Theorem` (e.g. from ``project.typecheck_statement``)."""
    t0 = time.perf_counter()
    tr = Translator(project)
    domain: list[z3.BoolRef] = []
    env: dict[int, Value] = {}
    shown: list[tuple[str, ir.Ty, Value]] = []
    try:
        for p in th.binders:
            env[p.uid] = tr.free(p.name, p.ty, domain)
            shown.append((p.name, p.ty, env[p.uid]))
        e = th.statement
        hyps: list[ir.Expr] = []
        while True:
            if isinstance(e, ir.Forall):
                assert e.body is not None
                for p in e.params:
                    env[p.uid] = tr.free(p.name, p.ty, domain)
                    shown.append((p.name, p.ty, env[p.uid]))
                e = e.body
            elif isinstance(e, ir.Prim) and e.op == "implies":
                hyps.append(e.args[0])
                e = e.args[1]
            else:
                break
        conjs = _conjuncts(e)
        calls: list[ir.Call] = []
        for x in hyps + conjs:
            _struct_calls(x, calls)
        tr.record = {id(c): None for c in calls}
        hyp_terms = [tr.tr(h, env) for h in hyps]
        conj_terms = [tr.tr(c, env) for c in conjs]
        quantified = _has_forall(th.statement.body if isinstance(th.statement, ir.Forall)
                                 else th.statement) or any(_has_forall(x) for x in hyps + conjs)
    except (TranslationError, KeyError, RecursionError) as exc:
        return SmtResult(th.name, "failed", time.perf_counter() - t0,
                         detail=f"translation error: {exc}")
    assumptions = [*domain, *hyp_terms]
    goal = z3.Not(z3.And(*conj_terms)) if len(conj_terms) > 1 else z3.Not(conj_terms[0])
    consts = [c for _, _, v in shown for c in _leaves(v) if z3.is_bv(c)]
    res, model, subst, detail = _solve(assumptions, goal, consts, quantified, timeout_ms)
    seconds = time.perf_counter() - t0
    if res == z3.unsat:
        return SmtResult(th.name, "proved", seconds, detail=detail)
    if res == z3.unknown:
        return SmtResult(th.name, "failed", seconds, detail=detail)
    assert model is not None
    cex = {name: to_python(project, _subst(v, subst), ty, model) for name, ty, v in shown}
    derived: dict[str, Any] = {}
    for c in calls:
        v = tr.record.get(id(c))
        if v is not None:
            derived.setdefault(th.text(c), to_python(project, _subst(v, subst), c.ty, model))
    failed = None
    for c, t in zip(conjs, conj_terms, strict=True):
        if z3.is_false(model.eval(z3.substitute(t, *subst) if subst else t,
                                  model_completion=True)):
            failed = th.text(c)
            break
    return SmtResult(th.name, "counterexample", seconds, counterexample=cex, derived=derived,
                     failed_conjunct=failed)
