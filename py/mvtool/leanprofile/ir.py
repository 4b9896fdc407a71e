"""Typed intermediate representation: what the backends (SMT, extraction) consume.

Types are :class:`Ty` values. Expressions are small immutable-by-convention dataclasses; every
node carries its type ``ty`` and its source ``span`` (offsets into the text of the file or
statement it came from), so a backend can quote the source of any sub-expression.

Bound variables (def parameters, ``let``, theorem binders, ``∀``) are identified by ``uid``,
unique within a project; names are kept for display only.

Primitive operations (:class:`Prim`) and their exact Lean meaning, ``w`` the operand width:

=========================== =========================================================================
op (params)                 meaning
=========================== =========================================================================
bvadd bvsub bvmul           modulo 2^w
bvudiv bvurem               unsigned; ``x / 0 = 0``, ``x % 0 = x`` (Lean ``BitVec.udiv``/``umod``)
bvand bvor bvxor bvnot      bitwise
bvneg                       two's complement negation
bvshl bvlshr (2 args)       shift by the value of a bit-vector of any width; amount ≥ w gives 0
bvshli bvlshri (k)          shift by the natural number literal k; k ≥ w gives 0
concat                      first argument is the high part
extract (start, len)        ``extractLsb' start len``: bits start…start+len-1, bits past w read 0
zext (n)                    ``setWidth``/``zeroExtend`` n: truncate or zero-extend
sext (n)                    ``signExtend`` n: truncate or sign-extend
ult ule ugt uge slt sle     comparisons (ty Bool or Prop)
eq ne                       equality on any type (structures field-wise)
and or not implies iff      logic on Bool/Prop
=========================== =========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Ty:
    """A profile type: ``kind`` in bool, prop, bv (``width``), struct / enum (``name``)."""

    kind: str
    width: int = 0
    name: str = ""

    def __str__(self) -> str:
        if self.kind == "bool":
            return "Bool"
        if self.kind == "prop":
            return "Prop"
        if self.kind == "bv":
            return f"BitVec {self.width}"
        return self.name

    @property
    def is_boolish(self) -> bool:
        return self.kind in ("bool", "prop")


BOOL = Ty("bool")
PROP = Ty("prop")


def bv(width: int) -> Ty:
    return Ty("bv", width)


Span = tuple[int, int]


@dataclass(slots=True, eq=False)
class Expr:
    ty: Ty
    span: Span | None = field(default=None, kw_only=True)


@dataclass(slots=True, eq=False)
class Var(Expr):
    name: str = ""
    uid: int = 0


@dataclass(slots=True, eq=False)
class BVLit(Expr):
    value: int = 0


@dataclass(slots=True, eq=False)
class BoolLit(Expr):
    value: bool = False


@dataclass(slots=True, eq=False)
class EnumLit(Expr):
    index: int = 0


@dataclass(slots=True, eq=False)
class Call(Expr):
    """Full application of a profile ``def`` (qualified name)."""

    fn: str = ""
    args: list[Expr] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Field(Expr):
    expr: Expr | None = None
    index: int = 0
    name: str = ""


@dataclass(slots=True, eq=False)
class MkStruct(Expr):
    """Structure value; ``fields`` in declaration order."""

    fields: list[Expr] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Update(Expr):
    """``{ base with … }``: ``updates`` maps field index -> new value; ``base`` is a Var."""

    base: Expr | None = None
    updates: dict[int, Expr] = field(default_factory=dict)


@dataclass(slots=True, eq=False)
class If(Expr):
    cond: Expr | None = None
    then: Expr | None = None
    els: Expr | None = None


@dataclass(slots=True, eq=False)
class Match(Expr):
    """``cases``: (constructor indices, arm) in source order; every constructor is covered once."""

    scrut: Expr | None = None
    cases: list[tuple[list[int], Expr]] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Let(Expr):
    name: str = ""
    uid: int = 0
    value: Expr | None = None
    body: Expr | None = None


@dataclass(slots=True, eq=False)
class Prim(Expr):
    op: str = ""
    args: list[Expr] = field(default_factory=list)
    params: tuple[int, ...] = ()


@dataclass(slots=True)
class Param:
    name: str
    uid: int
    ty: Ty


@dataclass(slots=True, eq=False)
class Forall(Expr):
    params: list[Param] = field(default_factory=list)
    body: Expr | None = None


# ---- declarations -----------------------------------------------------------------------------

@dataclass(slots=True)
class Structure:
    name: str
    fields: list[tuple[str, Ty, str]]  # name, type, doc
    file: str
    line: int
    doc: str = ""

    def index(self, fname: str) -> int | None:
        for i, (n, _, _) in enumerate(self.fields):
            if n == fname:
                return i
        return None


@dataclass(slots=True)
class Enum:
    name: str
    ctors: list[str]
    ctor_docs: list[str]
    file: str
    line: int
    doc: str = ""

    @property
    def width(self) -> int:
        """Bits of the SMT encoding (at least 1)."""
        return max(1, (len(self.ctors) - 1).bit_length())


@dataclass(slots=True)
class Def:
    name: str
    params: list[Param]
    ret: Ty
    body: Expr
    file: str
    line: int
    doc: str = ""


@dataclass(slots=True)
class Theorem:
    """A theorem statement: ``binders`` are the explicit arguments, ``statement`` a Prop.

    ``source`` is the text the spans of ``statement`` refer to (the file's text)."""

    name: str
    file: str
    line: int
    binders: list[Param]
    statement: Expr
    doc: str = ""
    source: str = ""
    proof: str = ""

    def text(self, e: Expr) -> str:
        """The source text of a sub-expression of the statement."""
        if e.span is None:
            return "?"
        return " ".join(self.source[e.span[0]:e.span[1]].split())
