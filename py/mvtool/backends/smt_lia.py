"""Linear-integer over-approximation of quantifier-free bit-vector formulas.

Range checks written without wrap-around (``rangeInRam``: ``base ≤ a ∧ len ≤ size ∧ a - base ≤
size - len``) against the same ranges at 65 bits (``within``) are easy for linear integer
arithmetic and very hard for bit-blasting: proving that two arrangements of 64-bit adders agree
is a SAT equivalence-checking problem. :func:`lia_refutes` translates a bit-vector formula into
linear integer arithmetic and asks Z3 whether the translation is unsatisfiable.

The translation is an *over-approximation*: every bit-vector model of the formula extends to a
model of the translation, so an unsatisfiable translation proves the formula unsatisfiable. A
satisfiable translation proves nothing (the caller falls back to bit-vectors).

* a bit-vector term of width w becomes an integer term with value in ``[0, 2^w)``;
* exact: constants, variables, ``+``, ``-``, negation, multiplication by a constant, ``~~~``,
  zero-extension, concatenation, extraction, ``&&&``/``|||``/``^^^`` with a constant, shifts
  by a constant, ``/`` and ``%`` by a non-zero constant, ``if``, comparisons and equality;
* abstracted: any other bit-vector term becomes a fresh integer in ``[0, 2^w)`` with the facts
  that hold for its operator (``x &&& y ≤ x``, ``x ||| y ≥ x``, ``x % y < y`` when ``y ≠ 0``);
  any other Boolean atom (signed comparisons, …) becomes a fresh Boolean.
"""

from __future__ import annotations

import z3

#: Z3 ``arith.solver`` used for the over-approximation (2: the simplex-based solver)
ARITH_SOLVER = 2

#: result of translating a bit-vector term: the integer term and an upper bound of its value
_Term = tuple[z3.ArithRef, int]


class _Blaster:
    def __init__(self) -> None:
        self.terms: dict[int, _Term] = {}
        self.bools: dict[int, z3.BoolRef] = {}
        self.side: list[z3.BoolRef] = []
        self.fresh_count = 0

    # ---- helpers ------------------------------------------------------------------------------
    def fresh(self, width: int) -> z3.ArithRef:
        self.fresh_count += 1
        v = z3.Int(f"lia!{self.fresh_count}")
        self.side += [v >= 0, v < 2 ** width]
        return v

    @staticmethod
    def wrap(t: z3.ArithRef, bound: int, width: int) -> _Term:
        """``t`` (with ``0 ≤ t ≤ bound``) modulo ``2^width``; no modulo when it cannot wrap."""
        m = 2 ** width
        if bound < m:
            return t, bound
        return t % m, m - 1

    @staticmethod
    def mask(x: z3.ArithRef, m: int, width: int) -> z3.ArithRef:
        """``x &&& m`` for a constant ``m``: the runs of one bits of m, extracted and summed."""
        parts: list[z3.ArithRef] = []
        i = 0
        while i < width:
            if not m >> i & 1:
                i += 1
                continue
            j = i
            while j < width and m >> j & 1:
                j += 1
            part = x if i == 0 else x / 2 ** i
            if j < width:
                part = part % 2 ** (j - i)
            parts.append(part * 2 ** i if i else part)
            i = j
        if not parts:
            return z3.IntVal(0)
        return z3.Sum(parts) if len(parts) > 1 else parts[0]

    # ---- bit-vector terms ---------------------------------------------------------------------
    def term(self, e: z3.BitVecRef) -> _Term:
        k = e.get_id()
        hit = self.terms.get(k)
        if hit is None:
            hit = self._term(e)
            self.terms[k] = hit
        return hit

    def _term(self, e: z3.BitVecRef) -> _Term:
        w = e.size()
        top = 2 ** w - 1
        if z3.is_bv_value(e):
            return z3.IntVal(e.as_long()), e.as_long()
        kind = e.decl().kind()
        if kind == z3.Z3_OP_UNINTERPRETED and e.num_args() == 0:
            v = z3.Int(f"{e}!{e.get_id()}")
            self.side += [v >= 0, v <= top]
            return v, top
        args = e.children()
        if kind == z3.Z3_OP_BADD:
            t, b = self.term(args[0])
            for a in args[1:]:
                t2, b2 = self.term(a)
                t, b = self.wrap(t + t2, b + b2, w)
            return t, b
        if kind == z3.Z3_OP_BMUL:
            c = 1
            others = []
            for a in args:
                if z3.is_bv_value(a):
                    c = c * a.as_long() % 2 ** w
                else:
                    others.append(a)
            if not others:
                return z3.IntVal(c), c
            if len(others) > 1:
                return self.opaque(e)
            t, b = self.term(others[0])
            if c == top:  # multiplication by -1, as the simplifier writes a subtraction
                return z3.If(t == 0, 0, 2 ** w - t), top
            return self.wrap(c * t, c * b, w)
        if kind == z3.Z3_OP_BSUB:
            (a, _), (b, _) = self.term(args[0]), self.term(args[1])
            return z3.If(a >= b, a - b, a - b + 2 ** w), top
        if kind == z3.Z3_OP_BNEG:
            a, _ = self.term(args[0])
            return z3.If(a == 0, 0, 2 ** w - a), top
        if kind == z3.Z3_OP_BNOT:
            a, _ = self.term(args[0])
            return top - a, top
        if kind == z3.Z3_OP_ZERO_EXT:
            return self.term(args[0])
        if kind == z3.Z3_OP_CONCAT:
            t, b = self.term(args[-1])
            shift = args[-1].size()
            for a in reversed(args[:-1]):
                t2, b2 = self.term(a)
                t, b = t2 * 2 ** shift + t, b2 * 2 ** shift + b
                shift += a.size()
            return t, b
        if kind == z3.Z3_OP_EXTRACT:
            hi, lo = e.params()
            t, b = self.term(args[0])
            if lo:
                t, b = t / 2 ** lo, b >> lo
            return self.wrap(t, b, hi - lo + 1)
        if kind == z3.Z3_OP_ITE:
            c = self.boolean(args[0])
            (t1, b1), (t2, b2) = self.term(args[1]), self.term(args[2])
            return z3.If(c, t1, t2), max(b1, b2)
        if kind in (z3.Z3_OP_BAND, z3.Z3_OP_BOR, z3.Z3_OP_BXOR) and len(args) == 2:
            x, m = args
            if z3.is_bv_value(x):
                x, m = m, x
            if z3.is_bv_value(m):
                t, b = self.term(x)
                mv = m.as_long()
                anded = self.mask(t, mv, w)
                if kind == z3.Z3_OP_BAND:
                    return anded, min(b, mv)
                if kind == z3.Z3_OP_BOR:
                    return t + mv - anded, top
                return t + mv - 2 * anded, top
            return self.opaque(e)
        if kind in (z3.Z3_OP_BUREM, z3.Z3_OP_BUREM_I, z3.Z3_OP_BUDIV, z3.Z3_OP_BUDIV_I):
            (a, ba) = self.term(args[0])
            divisor = args[1]
            rem = kind in (z3.Z3_OP_BUREM, z3.Z3_OP_BUREM_I)
            if z3.is_bv_value(divisor) and divisor.as_long() != 0:
                d = divisor.as_long()
                return (a % d, min(ba, d - 1)) if rem else (a / d, ba // d)
            if not rem:
                return self.opaque(e)
            d, _ = self.term(divisor)
            r = self.fresh(w)
            self.side.append(z3.Implies(d != 0, z3.And(r < d, r <= a)))
            if kind == z3.Z3_OP_BUREM:  # SMT-LIB: x % 0 = x (the _I variant leaves it open)
                self.side.append(z3.Implies(d == 0, r == a))
            return r, ba
        if kind in (z3.Z3_OP_BSHL, z3.Z3_OP_BLSHR) and z3.is_bv_value(args[1]):
            s = args[1].as_long()
            if s >= w:
                return z3.IntVal(0), 0
            t, b = self.term(args[0])
            if kind == z3.Z3_OP_BSHL:
                return self.wrap(t * 2 ** s, b * 2 ** s, w)
            return t / 2 ** s, b >> s
        return self.opaque(e)

    def opaque(self, e: z3.BitVecRef) -> _Term:
        """A fresh value standing for ``e``, with the facts its operator guarantees."""
        r = self.fresh(e.size())
        kind = e.decl().kind()
        if kind == z3.Z3_OP_BAND:
            self.side += [r <= self.term(a)[0] for a in e.children()]
        elif kind == z3.Z3_OP_BOR:
            self.side += [r >= self.term(a)[0] for a in e.children()]
        return r, 2 ** e.size() - 1

    # ---- Booleans -----------------------------------------------------------------------------
    def boolean(self, e: z3.BoolRef) -> z3.BoolRef:
        k = e.get_id()
        hit = self.bools.get(k)
        if hit is None:
            hit = self._boolean(e)
            self.bools[k] = hit
        return hit

    def _boolean(self, e: z3.BoolRef) -> z3.BoolRef:
        if z3.is_true(e) or z3.is_false(e):
            return e
        kind = e.decl().kind()
        args = e.children()
        if kind == z3.Z3_OP_UNINTERPRETED and not args:
            return e
        if kind == z3.Z3_OP_AND:
            return z3.And(*[self.boolean(a) for a in args])
        if kind == z3.Z3_OP_OR:
            return z3.Or(*[self.boolean(a) for a in args])
        if kind == z3.Z3_OP_NOT:
            return z3.Not(self.boolean(args[0]))
        if kind == z3.Z3_OP_IMPLIES:
            return z3.Implies(self.boolean(args[0]), self.boolean(args[1]))
        if kind == z3.Z3_OP_XOR:
            return z3.Xor(self.boolean(args[0]), self.boolean(args[1]))
        if kind == z3.Z3_OP_ITE:
            return z3.If(self.boolean(args[0]), self.boolean(args[1]), self.boolean(args[2]))
        if kind in (z3.Z3_OP_EQ, z3.Z3_OP_DISTINCT):
            if z3.is_bool(args[0]):
                vals = [self.boolean(a) for a in args]
            elif z3.is_bv(args[0]):
                vals = [self.term(a)[0] for a in args]
            else:
                return z3.FreshBool()
            if kind == z3.Z3_OP_DISTINCT:
                return z3.Distinct(*vals)
            return z3.And(*[vals[0] == v for v in vals[1:]]) if len(vals) > 2 else vals[0] == vals[1]
        cmp = {z3.Z3_OP_ULEQ: lambda a, b: a <= b, z3.Z3_OP_ULT: lambda a, b: a < b,
               z3.Z3_OP_UGEQ: lambda a, b: a >= b, z3.Z3_OP_UGT: lambda a, b: a > b}
        if kind in cmp:
            return cmp[kind](self.term(args[0])[0], self.term(args[1])[0])
        return z3.FreshBool()


def overapproximate(f: z3.BoolRef) -> z3.BoolRef:
    """The linear-integer over-approximation of a quantifier-free bit-vector formula."""
    b = _Blaster()
    g = b.boolean(f)
    return z3.And(*b.side, g)


def lia_refutes(f: z3.BoolRef, timeout_ms: int) -> bool:
    """True when the over-approximation of ``f`` is unsatisfiable (so ``f`` is); False when it
    is satisfiable or the solver gives up within ``timeout_ms``."""
    solver = z3.SolverFor("QF_LIA")
    solver.set("timeout", max(1, timeout_ms))
    # Z3's older simplex-based arithmetic solver: on these problems (bounds near 2^64, a
    # modulo per wrapping sum) 5–10× faster than the default one, and far less erratic.
    solver.set("arith.solver", ARITH_SOLVER)
    solver.add(overapproximate(f))
    return solver.check() == z3.unsat
