"""Fast read-only walks over Z3 terms, for the case splits of :mod:`mvtool.backends.smt`.

The Python API of Z3 builds a reference-counted wrapper object for every child it returns, and
the case split walks every case's formula several times (the conditions to split on, the
equalities a decision falsifies, the wide comparisons of the propositional skeleton). Those walks
cost more than solving the cases. :class:`TermTable` reads each node of a term once through the C
API (node kind, operator, children's ids) and answers the walks from that table; the cases of
one split share most of their nodes (Z3 hash-conses terms), so most nodes are read once per
search rather than once per case.

Node ids are only unique among live terms, so the table keeps every term it was given alive
until it is dropped (one table per search).
"""

from __future__ import annotations

from typing import Any

import z3
from z3 import z3core
from z3.z3 import _to_expr_ref  # the wrapper of the right class for a raw term

# The raw entry points skip the error check the generated wrappers make after every call; the
# getters used here cannot fail on a valid term. Fall back to the wrappers if the layout of the
# binding changes.
_LIB: Any = getattr(z3core, "_lib", None) or z3core
_get_id = _LIB.Z3_get_ast_id
_get_kind = _LIB.Z3_get_ast_kind
_num_args = _LIB.Z3_get_app_num_args
_get_arg = _LIB.Z3_get_app_arg
_get_decl = _LIB.Z3_get_app_decl
_decl_kind = _LIB.Z3_get_decl_kind
_get_sort = _LIB.Z3_get_sort
_sort_kind = _LIB.Z3_get_sort_kind
_bv_size = _LIB.Z3_get_bv_sort_size

_APP = z3.Z3_APP_AST
_NUMERAL = z3.Z3_NUMERAL_AST
_BOOL_SORT = z3.Z3_BOOL_SORT
_BV_SORT = z3.Z3_BV_SORT

#: decl kinds of the Boolean connectives whose arguments are atoms or formulas
CONNECTIVES = frozenset({z3.Z3_OP_AND, z3.Z3_OP_OR, z3.Z3_OP_NOT})


class TermTable:
    """The nodes of the terms added to it: id -> (AST kind, operator kind, children's ids)."""

    def __init__(self, ctx: z3.Context):
        self.ctx = ctx
        self.ref = ctx.ref()
        self.nodes: dict[int, tuple[int, int, tuple[int, ...]]] = {}
        self.ptr: dict[int, Any] = {}
        self._keep: list[z3.ExprRef] = []
        self._wrapped: dict[int, z3.ExprRef] = {}
        self._width: dict[int, int] = {}
        self._const_eq: dict[int, tuple[int, int] | None] = {}

    # ---- reading ------------------------------------------------------------------------------
    def add(self, e: z3.ExprRef) -> int:
        """Read ``e`` (the nodes not read before) and return its id."""
        self._keep.append(e)
        ref, nodes, ptr = self.ref, self.nodes, self.ptr
        root = e.as_ast()
        rid = _get_id(ref, root)
        stack = [(root, rid)]
        while stack:
            a, i = stack.pop()
            if i in nodes:
                continue
            ptr[i] = a
            kind = _get_kind(ref, a)
            if kind != _APP:
                nodes[i] = (kind, -1, ())
                continue
            n = _num_args(ref, a)
            args = [_get_arg(ref, a, k) for k in range(n)]
            ids = tuple(_get_id(ref, x) for x in args)
            nodes[i] = (kind, _decl_kind(ref, _get_decl(ref, a)), ids)
            stack.extend((x, j) for x, j in zip(args, ids, strict=True) if j not in nodes)
        return rid

    def expr(self, i: int) -> z3.ExprRef:
        """The term of node ``i`` as a Z3 Python object."""
        e = self._wrapped.get(i)
        if e is None:
            e = self._wrapped[i] = _to_expr_ref(self.ptr[i], self.ctx)
        return e

    def width(self, i: int) -> int:
        """Bit width of node ``i``; 0 for a Boolean, -1 for any other sort."""
        w = self._width.get(i)
        if w is None:
            s = _get_sort(self.ref, self.ptr[i])
            k = _sort_kind(self.ref, s)
            w = 0 if k == _BOOL_SORT else _bv_size(self.ref, s) if k == _BV_SORT else -1
            self._width[i] = w
        return w

    def is_free_const(self, i: int) -> bool:
        kind, op, args = self.nodes[i]
        return kind == _APP and op == z3.Z3_OP_UNINTERPRETED and not args

    # ---- walks --------------------------------------------------------------------------------
    def reachable(self, root: int, stop: Any = None) -> list[int]:
        """The ids below ``root`` (each once; not below a node for which ``stop`` is true)."""
        nodes = self.nodes
        seen = {root}
        out = []
        stack = [root]
        while stack:
            i = stack.pop()
            out.append(i)
            if stop is not None and stop(i):
                continue
            for j in nodes[i][2]:
                if j not in seen:
                    seen.add(j)
                    stack.append(j)
        return out

    def const_eq(self, i: int) -> tuple[int, int] | None:
        """``x = k`` with x a free bit-vector constant and k a value -> (id of x, k)."""
        if i in self._const_eq:
            return self._const_eq[i]
        out = None
        _, op, args = self.nodes[i]
        if op == z3.Z3_OP_EQ and len(args) == 2 and self.width(args[0]) > 0:
            a, b = args
            if self.nodes[a][0] == _NUMERAL:
                a, b = b, a
            if self.nodes[b][0] == _NUMERAL and self.is_free_const(a):
                out = (a, self.expr(b).as_long())
        self._const_eq[i] = out
        return out

    def atoms_of(self, cond: int) -> list[int]:
        """The atoms of a condition under its Boolean connectives."""
        out = []
        stack = [cond]
        while stack:
            i = stack.pop()
            _, op, args = self.nodes[i]
            if op in CONNECTIVES:
                stack.extend(args)
            else:
                out.append(i)
        return out

    def ite_conditions(self, roots: list[int]) -> list[tuple[int, int, int]]:
        """The conditions of the if-then-else chains at the top of ``roots`` (following both
        branches of every ``if``), as (condition, least depth, occurrences), in order of first
        occurrence breadth-first."""
        nodes = self.nodes
        found: dict[int, list[int]] = {}
        seen: set[int] = set()
        queue = [(t, 0) for t in roots]
        k = 0
        while k < len(queue):
            i, d = queue[k]
            k += 1
            if i in seen:
                continue
            _, op, args = nodes[i]
            if op != z3.Z3_OP_ITE:
                continue
            seen.add(i)
            entry = found.setdefault(args[0], [args[0], d, 0])
            entry[2] += 1
            queue += [(args[1], d + 1), (args[2], d + 1)]
        return [(c, d, n) for c, d, n in found.values()]

    def formula_ite_conditions(self, root: int) -> list[tuple[int, int, int]]:
        """Every if-then-else condition below ``root`` (depth 0), with occurrences."""
        found: dict[int, list[int]] = {}
        nodes = self.nodes
        for i in self.reachable(root):
            _, op, args = nodes[i]
            if op == z3.Z3_OP_ITE:
                entry = found.setdefault(args[0], [args[0], 0, 0])
                entry[2] += 1
        return [(c, d, n) for c, d, n in found.values()]

    def equalities(self, root: int) -> list[int]:
        """Every equality below ``root``."""
        nodes = self.nodes
        return [i for i in self.reachable(root) if nodes[i][1] == z3.Z3_OP_EQ]

    def wide_atoms(self, root: int, width: int) -> list[int]:
        """The comparisons below ``root`` (not inside one another) of two bit-vectors of at
        least ``width`` bits."""
        nodes = self.nodes

        def wide(i: int) -> bool:
            args = nodes[i][2]
            return (len(args) == 2 and nodes[i][0] == _APP and self.width(args[0]) >= width
                    and self.width(i) == 0)

        return [i for i in self.reachable(root, wide) if wide(i)]
