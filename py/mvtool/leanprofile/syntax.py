"""Surface syntax tree produced by the parser (untyped; names unresolved).

Every node records its source span (``start``/``end`` offsets into the file text) and the
1-based ``line``/``col`` of its first token, so that errors and counterexample reports can quote
the source exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, kw_only=True)
class Node:
    start: int
    end: int
    line: int
    col: int


# ---- types -------------------------------------------------------------------------------------

@dataclass(slots=True, kw_only=True)
class TypeExpr(Node):
    """``Bool``, ``Prop``, ``BitVec n`` (``width`` set) or a named type (``name`` set);
    ``bad`` carries the text of anything else (rejected by the type checker)."""

    kind: str  # "bool" | "prop" | "bitvec" | "name" | "bad"
    name: str = ""
    width: int = 0
    bad: str = ""


# ---- expressions ------------------------------------------------------------------------------

@dataclass(slots=True, kw_only=True)
class Expr(Node):
    pass


@dataclass(slots=True, kw_only=True)
class Ident(Expr):
    name: str


@dataclass(slots=True, kw_only=True)
class DotIdent(Expr):
    name: str


@dataclass(slots=True, kw_only=True)
class Num(Expr):
    value: int
    width: int | None


@dataclass(slots=True, kw_only=True)
class App(Expr):
    fn: Expr
    args: list[Expr]


@dataclass(slots=True, kw_only=True)
class Proj(Expr):
    expr: Expr
    name: str
    name_line: int
    name_col: int


@dataclass(slots=True, kw_only=True)
class BinOp(Expr):
    op: str
    lhs: Expr
    rhs: Expr
    op_line: int
    op_col: int


@dataclass(slots=True, kw_only=True)
class UnOp(Expr):
    op: str
    arg: Expr


@dataclass(slots=True, kw_only=True)
class If(Expr):
    cond: Expr
    then: Expr
    els: Expr


@dataclass(slots=True, kw_only=True)
class Pattern(Node):
    """``.c`` (dot=True), ``E.c`` / ``c`` (a constructor name) or ``_`` (name == "_")."""

    name: str
    dot: bool


@dataclass(slots=True, kw_only=True)
class Match(Expr):
    scrut: Expr
    arms: list[tuple[Pattern, Expr]]


@dataclass(slots=True, kw_only=True)
class Let(Expr):
    name: str
    ty: TypeExpr | None
    value: Expr
    body: Expr


@dataclass(slots=True, kw_only=True)
class FieldInit(Node):
    path: list[str]
    value: Expr


@dataclass(slots=True, kw_only=True)
class StructInst(Expr):
    """``{ f := a, … }`` (base None) or ``{ base with f := a, … }``; ``ty`` from ``: S``."""

    base: Expr | None
    fields: list[FieldInit]
    ty: TypeExpr | None


@dataclass(slots=True, kw_only=True)
class Ascribe(Expr):
    expr: Expr
    ty: TypeExpr


@dataclass(slots=True, kw_only=True)
class Paren(Expr):
    expr: Expr


@dataclass(slots=True, kw_only=True)
class Forall(Expr):
    binders: list[tuple[str, TypeExpr, Node]]
    body: Expr


# ---- commands ---------------------------------------------------------------------------------

@dataclass(slots=True, kw_only=True)
class Command(Node):
    doc: str = ""


@dataclass(slots=True, kw_only=True)
class ImportCmd(Command):
    module: str


@dataclass(slots=True, kw_only=True)
class NamespaceCmd(Command):
    name: str


@dataclass(slots=True, kw_only=True)
class EndCmd(Command):
    name: str


@dataclass(slots=True, kw_only=True)
class OpenCmd(Command):
    names: list[str]


@dataclass(slots=True, kw_only=True)
class StructureCmd(Command):
    name: str
    fields: list[tuple[str, TypeExpr, str, Node]]  # name, type, doc, position


@dataclass(slots=True, kw_only=True)
class InductiveCmd(Command):
    name: str
    ctors: list[tuple[str, str, Node]]  # name, doc, position


@dataclass(slots=True, kw_only=True)
class Binder(Node):
    name: str
    ty: TypeExpr


@dataclass(slots=True, kw_only=True)
class DefCmd(Command):
    name: str
    binders: list[Binder]
    ret: TypeExpr
    body: Expr
    name_line: int = 0
    name_col: int = 0


@dataclass(slots=True, kw_only=True)
class TheoremCmd(Command):
    name: str
    binders: list[Binder]
    stmt: Expr
    proof_text: str = ""


@dataclass(slots=True)
class Module:
    """A parsed file: its path (repo-relative), its source text and its commands."""

    file: str
    text: str
    commands: list[Command] = field(default_factory=list)
    imports: list[ImportCmd] = field(default_factory=list)
