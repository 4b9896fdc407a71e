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

Search (:func:`_solve`): statements about a step (``wellFormed s → wellFormed (mmioWrite s off
v)``) are split at once into cases on the conditions of the if-then-else chains of the
post-state's fields (``off = 0x70``, ``v = 0``, ``s.status = 11``, …), each decision substituted
into the formula and simplified, so that the post-state collapses to the pre-state or to
constants and the two copies of a large circuit (``activationOk``) become one term (a direct
attempt on such a statement was time wasted whenever it needed the split anyway). Each case is
tried briefly while there is more to split on; at the bottom of the split with the
*propositional skeleton* (wide comparisons abstracted by Booleans), bit-vectors and the
linear-integer over-approximation of :mod:`mvtool.backends.smt_lia` (64-bit range arithmetic),
in turn with growing limits. Other statements: a short bit-vector attempt, the linear-integer
one, then a split on the formula's own if-then-else conditions. Proved only if every case of the
exhaustive split is unsat; a model of any case is checked against the whole negated statement
before it is reported. ``SmtResult.cases`` counts the cases. The walks over the cases' terms go
through :mod:`mvtool.backends.smt_terms`; translations are shared by the statements of one
project (:class:`Translator`).

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
import weakref
from dataclasses import dataclass, field
from typing import Any

import z3

from mvtool.backends.smt_lia import lia_refutes
from mvtool.backends.smt_terms import TermTable
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


#: translations of definition applications, shared by the proofs of one project
#: (see :class:`Translator`); keyed by ``id(project)``, dropped when the project is
_SHARED_MEMO: dict[int, dict[Any, tuple[Any, Value]]] = {}


def _shared_memo(project: Project) -> dict[Any, tuple[Any, Value]]:
    memo = _SHARED_MEMO.get(id(project))
    if memo is None:
        memo = _SHARED_MEMO[id(project)] = {}
        weakref.finalize(project, _SHARED_MEMO.pop, id(project), None)
    return memo


class Translator:
    """Translates IR expressions to Z3 values; one per proof/evaluation.

    Applications of definitions are memoised per (definition, argument terms). With
    ``shared=True`` the memo is shared by every translator of
    the same project: the statements of a catalogue name their binders alike (``s``, ``off``,
    ``v``), Z3 hash-conses equal terms, so ``mmioWrite s off v`` is translated once per process.
    A shared entry keeps its argument terms alive, so their ids cannot be reused."""

    def __init__(self, project: Project, *, shared: bool = False):
        self.project = project
        self.memo: dict[tuple[str, Any], Value] = {}
        self.shared = _shared_memo(project) if shared else None
        self.names: set[str] = set()
        self.record: dict[int, Value] | None = None

    def _call(self, d: ir.Def, args: list[Value]) -> Value:
        key = (d.name, tuple(_key(a) for a in args))
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        skey = (id(d), key[1])
        if self.shared is not None and (entry := self.shared.get(skey)) is not None \
                and entry[0][0] is d:
            hit = entry[1]
        else:
            hit = self.tr(d.body, {p.uid: a for p, a in zip(d.params, args, strict=True)})
            if self.shared is not None:
                self.shared[skey] = ((d, args), hit)
        self.memo[key] = hit
        return hit

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
            return self._call(self.project.defs[e.fn], [self.tr(a, env) for a in e.args])
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
    #: cases the statement was split into (1: proved or refuted without a split)
    cases: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"theorem": self.theorem, "backend": "smt", "status": self.status,
                "seconds": round(self.seconds, 4), "detail": self.detail,
                "counterexample": self.counterexample, "derived": self.derived,
                "failed_conjunct": self.failed_conjunct, "cases": self.cases}


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


def _struct_calls(e: ir.Expr, out: list[ir.Call], kinds: tuple[str, ...] = ("struct",)) -> None:
    """The applications in ``e`` (outside quantifiers) whose result type is of ``kinds``."""
    if isinstance(e, ir.Forall):
        return
    if isinstance(e, ir.Call) and e.ty.kind in kinds:
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
        _struct_calls(c, out, kinds)


#: a statement without post-state terms to split on: a short bit-vector attempt (decides the
#: small statements), then the linear-integer attempt (range arithmetic) (ms)
DIRECT_MS = 50
DIRECT_LIA_MS = 3000
#: per case of a split (see :meth:`_Search.attempt`): bit-vectors on a case with more to split
#: on (decides the cases the simplifier nearly closed); at the bottom of the split linear integer
#: arithmetic, bit-vectors briefly, bit-vectors for longer; the skeleton gets CASE_MS (ms)
CASE_MS = 50
CASE_SPLITTABLE_MS = 5
CASE_FINAL_LIA_MS = 1500
CASE_FINAL_MS = 1000
#: nesting bound of case splits
MAX_SPLIT_DEPTH = 16


def _decision_pairs(t: TermTable, atom: int, value: bool
                    ) -> list[tuple[z3.ExprRef, z3.ExprRef]]:
    """Substitutions implied by deciding ``atom`` (a node of ``t``) to be ``value``: the atom
    itself, the parts of a conjunction decided true (disjunction decided false), ``x := k`` for
    ``x = k`` true."""
    out: list[tuple[z3.ExprRef, z3.ExprRef]] = [(t.expr(atom), z3.BoolVal(value))]
    _, op, args = t.nodes[atom]
    if op == z3.Z3_OP_NOT:
        return out + _decision_pairs(t, args[0], not value)
    if (value and op == z3.Z3_OP_AND) or (not value and op == z3.Z3_OP_OR):
        for a in args:
            out += _decision_pairs(t, a, value)
    eq = t.const_eq(atom) if value else None
    if eq is not None:
        out.append((t.expr(eq[0]), z3.BitVecVal(eq[1], t.width(eq[0]))))
    return out


def _bundle(terms: list[z3.ExprRef]) -> z3.ExprRef:
    """``terms`` as the arguments of one application of an uninterpreted predicate (which
    ``simplify`` and ``substitute`` leave in place, rewriting its arguments)."""
    return z3.Function("bundle!", *[t.sort() for t in terms], z3.BoolSort())(*terms)


def _ite_leaves(terms: Any) -> list[z3.ExprRef]:
    """The if-then-else terms among ``terms``, each once."""
    out: dict[int, z3.ExprRef] = {}
    for t in terms:
        if z3.is_app_of(t, z3.Z3_OP_ITE):
            out.setdefault(t.get_id(), t)
    return list(out.values())


def _label(part: Any) -> str:
    if isinstance(part, str):
        return part
    cond, value = part
    return f"{cond} {'holds' if value else 'fails'}"


@dataclass
class _Case:
    """One case of a split: ``formula ∧ literals`` is equivalent to the negated statement
    conjoined with ``literals`` (the decisions taken on the way here), since every decision was
    substituted into ``formula`` and kept in ``literals``.

    ``path`` names the decisions; those on arbitrary conditions are kept as (condition, value)
    and printed only when the path is shown (printing Z3 terms is slow)."""

    formula: z3.BoolRef
    leaves: list[z3.ExprRef]
    literals: list[z3.BoolRef]
    prefix: str = ""
    labels: tuple[Any, ...] = ()
    table: TermTable | None = None

    @property
    def path(self) -> str:
        return self.prefix + "".join(f"{_label(p)}; " for p in self.labels)

    @property
    def terms(self) -> TermTable:
        if self.table is None:
            self.table = TermTable(self.formula.ctx)
        return self.table

    def decide(self, pairs: list[tuple[z3.ExprRef, z3.ExprRef]], literals: list[z3.BoolRef],
               label: Any) -> _Case:
        uniq: dict[int, tuple[z3.ExprRef, z3.ExprRef]] = {}
        for a, b in pairs:
            uniq.setdefault(a.get_id(), (a, b))
        # The formula and the post-state terms as the arguments of one application, so that
        # they are substituted and simplified in one pass over their shared subterms.
        bundle = _bundle([self.formula, *self.leaves])
        done = z3.simplify(z3.substitute(bundle, *uniq.values())).children()
        return _Case(done[0], _ite_leaves(done[1:]), self.literals + literals, self.prefix,
                     (*self.labels, label), self.table)

    def splits(self) -> list[_Case] | None:
        """The cases of the next split, or None when there is nothing left to split on.

        The split is on the shallowest (then most frequent) condition of the if-then-else
        chains in the post-state terms (the fields of the structure-valued applications of
        the statement), or of the formula when those have none. When that condition compares
        a free constant with a value (a register offset, the status), the split is n-ary: one
        case per value it is compared with in those chains, and one for all other values."""
        t = self.terms
        conds = t.ite_conditions([t.add(x) for x in self.leaves])
        formula = t.add(self.formula)
        if not conds:
            conds = t.formula_ite_conditions(formula)
        if not conds:
            return None
        cond = min(conds, key=lambda c: (c[1], -c[2]))[0]
        eqs = [e for e in map(t.const_eq, t.atoms_of(cond)) if e is not None]
        if not eqs:
            c = t.expr(cond)
            return [self.decide(_decision_pairs(t, cond, v), [c if v else z3.Not(c)], (c, v))
                    for v in (True, False)]
        x = eqs[0][0]
        values: set[int] = set()
        for c, _, _ in conds:
            for a in t.atoms_of(c):
                e = t.const_eq(a)
                if e is not None and e[0] == x:
                    values.add(e[1])
        xe = t.expr(x)
        out = []
        for k in sorted(values):
            kv = z3.BitVecVal(k, t.width(x))
            out.append(self.decide([(xe, kv)], [xe == kv], f"{xe} = {k:#x}"))
        others = [t.expr(a) for a in t.equalities(formula)
                  if (e := t.const_eq(a)) is not None and e[0] == x and e[1] in values]
        out.append(self.decide([(a, z3.BoolVal(False)) for a in others],
                               [xe != k for k in sorted(values)], f"{xe} other"))
        return out


#: bit-vector atoms over operands at least this wide are abstracted by :func:`_skeleton`
SKELETON_WIDTH = 64


def _skeleton(f: z3.BoolRef, table: TermTable | None = None) -> z3.BoolRef | None:
    """``f`` with every comparison of wide bit-vectors (the 64-bit range arithmetic of the
    layout checks) replaced by a fresh Boolean, the same one for the same atom; None when there
    is none. An over-approximation: unsat proves ``f`` unsat. After a case split the pre- and
    post-state often share those atoms, and the rest is a small problem."""
    t = table or TermTable(f.ctx)
    atoms = t.wide_atoms(t.add(f), SKELETON_WIDTH)
    if not atoms:
        return None
    return z3.substitute(f, *[(t.expr(i), z3.Bool(f"atom!{i}")) for i in atoms])


@dataclass
class _Search:
    """Solve a quantifier-free negated statement, splitting it into cases where a direct
    attempt is inconclusive. Exhaustive: ``unsat`` only when every case is unsat."""

    deadline: float
    calls: int = 0
    cases: int = 0
    lia_cases: int = 0
    skeleton_cases: int = 0
    unknown: str = ""

    def left_ms(self) -> int:
        return int((self.deadline - time.perf_counter()) * 1000)

    def bv(self, f: z3.BoolRef, ms: int) -> tuple[Any, z3.ModelRef | None, str]:
        self.calls += 1
        solver = z3.SolverFor("QF_BV")
        solver.set("timeout", max(1, min(ms, self.left_ms())))
        solver.add(f)
        r = solver.check()
        if r == z3.sat:
            return r, solver.model(), ""
        return r, None, "" if r == z3.unsat else f"unknown ({solver.reason_unknown()})"

    def lia(self, f: z3.BoolRef, ms: int) -> bool:
        ms = min(ms, self.left_ms())
        if ms <= 0:
            return False
        self.calls += 1
        return lia_refutes(f, ms)

    def skeleton(self, case: _Case, query: z3.BoolRef) -> bool:
        """The propositional skeleton of ``query`` is unsat (so the case is)."""
        skel = _skeleton(query, case.terms)
        if skel is not None and self.bv(skel, CASE_MS)[0] == z3.unsat:
            self.skeleton_cases += 1
            return True
        return False

    def attempt(self, case: _Case, query: z3.BoolRef) -> tuple[Any, z3.ModelRef | None, str]:
        """The solvers' attempts on one case before (or instead of) splitting it: with more to
        split on, only what is nearly closed (a few ms of bit-vectors, the skeleton); at the
        bottom of the split the skeleton (cheap, and often all it takes once the pre- and
        post-state share their wide comparisons), linear integer arithmetic (what is left there
        is mostly range arithmetic), bit-vectors briefly, and bit-vectors again for longer."""
        if case.leaves:
            r, model, why = self.bv(query, CASE_SPLITTABLE_MS)
            if r == z3.unknown and self.skeleton(case, query):
                return z3.unsat, None, ""
            return r, model, why
        if self.skeleton(case, query):
            return z3.unsat, None, ""
        if self.lia(query, CASE_FINAL_LIA_MS):
            self.lia_cases += 1
            return z3.unsat, None, ""
        r, model, why = self.bv(query, CASE_MS)
        if r == z3.unknown:
            r, model, why = self.bv(query, CASE_FINAL_MS)
        return r, model, why

    def solve(self, case: _Case, depth: int) -> tuple[Any, z3.ModelRef | None]:
        """unsat / sat (with a model of the case, hence of the statement's negation) / unknown
        (``self.unknown`` says where)."""
        if z3.is_false(case.formula):
            self.cases += 1
            return z3.unsat, None
        query = z3.And(case.formula, *case.literals)
        r, model, why = self.attempt(case, query)
        if r != z3.unknown:
            if r == z3.unsat:
                self.cases += 1
            return r, model
        children = case.splits() if depth < MAX_SPLIT_DEPTH and self.left_ms() > 0 else None
        if children is None:
            r, model, why = self.persist(query, why)
            if r == z3.unsat:
                self.cases += 1
            if r != z3.unknown:
                return r, model
            self.unknown = self.unknown or (f"solver returned {why or 'unknown'} in the case "
                                            f"{case.path.rstrip('; ')}")
            return z3.unknown, None
        return self.solve_all(children, depth + 1)

    def persist(self, query: z3.BoolRef, why: str) -> tuple[Any, z3.ModelRef | None, str]:
        """Nothing left to split on: the linear-integer and the bit-vector attempts in turn,
        each limit doubled per round, until one decides or the time is up. (A loaded machine
        can make the first limits too short for an attempt that normally succeeds.)"""
        ms = CASE_FINAL_LIA_MS
        while self.left_ms() > 0:
            if self.lia(query, 2 * ms):
                self.lia_cases += 1
                return z3.unsat, None, ""
            r, model, why = self.bv(query, 2 * ms)
            if r != z3.unknown:
                return r, model, why
            ms *= 2
        return z3.unknown, None, why

    def solve_all(self, cases: list[_Case], depth: int) -> tuple[Any, z3.ModelRef | None]:
        """The cases of one exhaustive split: sat if one is, unsat if all are."""
        result = z3.unsat
        for case in cases:
            r, model = self.solve(case, depth)
            if r == z3.sat:
                return r, model
            if r == z3.unknown:
                result = z3.unknown
        return result, None


def _solve(assumptions: list[z3.BoolRef], goal: z3.BoolRef, leaves: list[z3.ExprRef],
           quantified: bool, timeout_ms: int) -> tuple[Any, z3.ModelRef | None, str, int]:
    """Check ``assumptions ∧ goal``. With post-state terms (``leaves``) to split on: the case
    split (:meth:`_Case.splits`) at once, each case tried briefly before it is split further.
    Without: a bit-vector attempt, the linear-integer over-approximation
    (:mod:`mvtool.backends.smt_lia`), then a split on the formula's if-then-else conditions.
    Returns (result, model, detail, number of cases)."""
    search = _Search(time.perf_counter() + timeout_ms / 1000)
    formula = z3.And(*assumptions, goal)
    if quantified:
        solver = z3.Solver()
        solver.set("timeout", timeout_ms)
        solver.add(formula)
        r = solver.check()
        detail = "" if r != z3.unknown else f"solver returned unknown ({solver.reason_unknown()})"
        return r, solver.model() if r == z3.sat else None, detail, 1
    simplified = z3.simplify(_bundle([formula, *leaves])).children()
    root = _Case(simplified[0], _ite_leaves(simplified[1:]), [])
    if not root.leaves:
        r, model, _ = search.bv(formula, min(timeout_ms, DIRECT_MS))
        if r != z3.unknown:
            return r, model, "", 1
        if search.lia(formula, DIRECT_LIA_MS):
            return z3.unsat, None, "proved by linear integer arithmetic", 1
    children = root.splits()
    if children is None:
        r, model, why = search.bv(formula, search.left_ms())
        return r, model, "" if r != z3.unknown else f"solver returned {why}", 1
    r, model = search.solve_all(children, 1)
    if r == z3.unsat:
        how = "".join(f", {n} by {what}" for n, what in (
            (search.skeleton_cases, "the propositional skeleton"),
            (search.lia_cases, "linear integer arithmetic")) if n)
        return r, None, (f"proved by case split: {search.cases} cases{how} "
                         f"({search.calls} solver calls)"), search.cases
    if r == z3.sat:
        return r, model, "", search.cases + 1
    return r, None, search.unknown or "solver returned unknown", search.cases


def check_theorem(project: Project, theorem_name: str, *, timeout_ms: int = 30000) -> SmtResult:
    """Prove (or refute) the statement of a project theorem with Z3."""
    th = project.theorems.get(theorem_name)
    if th is None:
        return SmtResult(theorem_name, "failed", 0.0, detail="no such theorem")
    return check_statement(project, th, timeout_ms=timeout_ms)


def check_statement(project: Project, th: ir.Theorem, *, timeout_ms: int = 30000) -> SmtResult:
    """Prove (or refute) an :class:`ir.Theorem` (e.g. from ``project.typecheck_statement``)."""
    t0 = time.perf_counter()
    tr = Translator(project, shared=True)
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
        values: list[ir.Call] = []  # whose if-then-else conditions guide case splits
        for x in hyps + conjs:
            _struct_calls(x, values, ("struct", "bv"))
        values.sort(key=lambda c: c.ty.kind != "struct")
        tr.record = {id(c): None for c in calls + values}
        hyp_terms = [tr.tr(h, env) for h in hyps]
        conj_terms = [tr.tr(c, env) for c in conjs]
        quantified = _has_forall(th.statement.body if isinstance(th.statement, ir.Forall)
                                 else th.statement) or any(_has_forall(x) for x in hyps + conjs)
    except (TranslationError, KeyError, RecursionError) as exc:
        return SmtResult(th.name, "failed", time.perf_counter() - t0,
                         detail=f"translation error: {exc}")
    assumptions = [*domain, *hyp_terms]
    goal = z3.Not(z3.And(*conj_terms)) if len(conj_terms) > 1 else z3.Not(conj_terms[0])
    leaves = [x for c in values if (v := tr.record.get(id(c))) is not None for x in _leaves(v)]
    res, model, detail, cases = _solve(assumptions, goal, leaves, quantified, timeout_ms)
    seconds = time.perf_counter() - t0
    if res == z3.unsat:
        return SmtResult(th.name, "proved", seconds, detail=detail, cases=cases)
    if res == z3.unknown:
        return SmtResult(th.name, "failed", seconds, detail=detail, cases=cases)
    assert model is not None
    if not quantified and not z3.is_true(model.eval(z3.And(*assumptions, goal),
                                                    model_completion=True)):
        # a case's model must falsify the statement itself; never report one that does not
        return SmtResult(th.name, "failed", time.perf_counter() - t0, cases=cases,
                         detail="internal error: a model that does not falsify the statement")
    cex = {name: to_python(project, v, ty, model) for name, ty, v in shown}
    derived: dict[str, Any] = {}
    for c in calls:
        v = tr.record.get(id(c))
        if v is not None:
            derived.setdefault(th.text(c), to_python(project, v, c.ty, model))
    failed = None
    for c, t in zip(conjs, conj_terms, strict=True):
        if z3.is_false(model.eval(t, model_completion=True)):
            failed = th.text(c)
            break
    return SmtResult(th.name, "counterexample", seconds, counterexample=cex, derived=derived,
                     failed_conjunct=failed, cases=cases)
