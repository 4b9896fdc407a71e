"""Name resolution and type checking: surface syntax -> typed IR.

Elaboration is bidirectional, like Lean's for the profile's fragment: numeric literals, ``.c``
constructors and anonymous structure instances take their type from the expected type; binary
operators elaborate the operand that determines its own type first (Lean's ``binop%``/``binrel%``
give the same result on the profile's types).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from mvtool.leanprofile import ir
from mvtool.leanprofile import syntax as S
from mvtool.leanprofile.errors import ProfileError
from mvtool.leanprofile.ir import BOOL, PROP, Ty, bv

OUTSIDE_TYPES = {"Nat", "Int", "UInt8", "UInt16", "UInt32", "UInt64", "USize", "Fin", "List",
                 "Array", "Option", "String", "Char", "Unit", "Float", "Prod", "Sum", "Id",
                 "Vector", "ByteArray", "Type", "Sort"}

ARITH = {"+": "bvadd", "-": "bvsub", "*": "bvmul", "/": "bvudiv", "%": "bvurem", "&&&": "bvand",
         "|||": "bvor", "^^^": "bvxor"}
CMP = {"<": "ult", ">": "ugt", "≤": "ule", "≥": "uge"}
BUILTINS: dict[str, tuple[str, ...]] = {
    # name -> parameter kinds: "nat" (numeric literal) or "bv"
    "BitVec.ofNat": ("nat", "nat"),
    "BitVec.zeroExtend": ("nat", "bv"),
    "BitVec.setWidth": ("nat", "bv"),
    "BitVec.signExtend": ("nat", "bv"),
    "BitVec.extractLsb'": ("nat", "nat", "bv"),
    "BitVec.ult": ("bv", "bv"),
    "BitVec.ule": ("bv", "bv"),
    "BitVec.slt": ("bv", "bv"),
    "BitVec.sle": ("bv", "bv"),
}
#: largest bit-vector width in the profile
MAX_WIDTH = 128
_uids = itertools.count(1)


def fresh_uid() -> int:
    return next(_uids)


@dataclass(slots=True)
class CtorRef:
    enum: ir.Enum
    index: int


@dataclass(slots=True)
class FieldRef:
    struct: ir.Structure
    index: int


@dataclass(slots=True)
class TheoremRef:
    theorem: ir.Theorem


Decl = ir.Structure | ir.Enum | CtorRef | FieldRef | ir.Def | TheoremRef


@dataclass
class Env:
    """Global declarations of a project, with the file that declares each."""

    decls: dict[str, Decl] = field(default_factory=dict)
    decl_file: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, decl: Decl, file: str) -> None:
        self.decls[name] = decl
        self.decl_file[name] = file

    def lookup(self, name: str, visible: set[str] | None) -> Decl | None:
        d = self.decls.get(name)
        if d is None or (visible is not None and self.decl_file[name] not in visible):
            return None
        return d

    def resolve(self, name: str, namespace: str, opens: list[str],
                visible: set[str] | None) -> tuple[str, Decl] | None:
        """Lean's rule: innermost enclosing namespace first, then the root, then ``open``s.

        Raises KeyError(message) when several opened namespaces provide the name."""
        if name.startswith("_root_."):
            d = self.lookup(name[7:], visible)
            return (name[7:], d) if d is not None else None
        parts = namespace.split(".") if namespace else []
        for k in range(len(parts), -1, -1):
            q = ".".join(parts[:k] + [name])
            d = self.lookup(q, visible)
            if d is not None:
                return q, d
        hits = []
        for o in opens:
            q = f"{o}.{name}"
            d = self.lookup(q, visible)
            if d is not None and all(h[0] != q for h in hits):
                hits.append((q, d))
        if len(hits) > 1:
            raise KeyError(f"ambiguous name `{name}`: " + ", ".join(h[0] for h in hits))
        return hits[0] if hits else None


@dataclass
class Local:
    uid: int
    ty: Ty


@dataclass
class Head:
    """A resolved function position: a def, a builtin or a structure projection function,
    with arguments already supplied by generalized field notation (position -> IR)."""

    kind: str  # "def" | "builtin" | "field"
    name: str
    decl: object
    pre: dict[int, ir.Expr] = field(default_factory=dict)


class Elaborator:
    """Elaborates expressions of one declaration."""

    def __init__(self, env: Env, file: str, namespace: str, opens: list[str],
                 visible: set[str] | None, *, current: str = "", statement: bool = False):
        self.env = env
        self.file = file
        self.namespace = namespace
        self.opens = opens
        self.visible = visible
        self.current = current
        self.statement = statement
        self.locals: dict[str, Local] = {}

    # ---- errors and helpers -------------------------------------------------------------------
    def err(self, msg: str, rule: str, node: S.Node) -> ProfileError:
        return ProfileError(msg, rule, self.file, node.line, node.col)

    def resolve(self, name: str, node: S.Node) -> tuple[str, Decl] | None:
        try:
            return self.env.resolve(name, self.namespace, self.opens, self.visible)
        except KeyError as exc:
            raise self.err(str(exc.args[0]), "P-NAME", node) from None

    def check(self, e: ir.Expr, expected: Ty | None, node: S.Node) -> ir.Expr:
        if expected is None or e.ty == expected or (e.ty.is_boolish and expected.is_boolish):
            return e
        raise self.err(f"type mismatch: expected `{expected}`, got `{e.ty}`", "P-TYPECHECK",
                       node)

    # ---- types --------------------------------------------------------------------------------
    def elab_type(self, t: S.TypeExpr, *, allow_prop: bool = False) -> Ty:
        if t.kind == "bool":
            return BOOL
        if t.kind == "prop":
            if not allow_prop:
                raise self.err("`Prop` is only allowed as the type of a theorem statement",
                               "P-TYPE", t)
            return PROP
        if t.kind == "bitvec":
            if not 1 <= t.width <= MAX_WIDTH:
                raise self.err(f"`BitVec {t.width}`: widths must be between 1 and {MAX_WIDTH}",
                               "P-TYPE", t)
            return bv(t.width)
        if t.kind == "bad" or t.name.split(".")[-1] in OUTSIDE_TYPES:
            text = t.bad or t.name
            raise self.err(f"type `{text}` is outside the profile (use Bool, BitVec n, a "
                           "structure or an enumeration)", "P-TYPE", t)
        r = self.resolve(t.name, t)
        if r is not None and isinstance(r[1], ir.Structure):
            return Ty("struct", name=r[0])
        if r is not None and isinstance(r[1], ir.Enum):
            return Ty("enum", name=r[0])
        raise self.err(f"unknown type `{t.name}`", "P-TYPE", t)

    def struct_of(self, ty: Ty) -> ir.Structure:
        d = self.env.decls[ty.name]
        assert isinstance(d, ir.Structure)
        return d

    def enum_of(self, ty: Ty) -> ir.Enum:
        d = self.env.decls[ty.name]
        assert isinstance(d, ir.Enum)
        return d

    # ---- expressions --------------------------------------------------------------------------
    def needs_expected(self, e: S.Expr) -> bool:
        """True if ``e`` cannot determine its own type (a literal-like expression)."""
        if isinstance(e, S.Num):
            return e.width is None
        if isinstance(e, S.DotIdent):
            return True
        if isinstance(e, S.StructInst):
            return e.base is None and e.ty is None
        if isinstance(e, S.Paren):
            return self.needs_expected(e.expr)
        if isinstance(e, S.UnOp) and e.op in ("-", "~~~"):
            return self.needs_expected(e.arg)
        if isinstance(e, S.BinOp) and e.op in ARITH:
            return self.needs_expected(e.lhs) and self.needs_expected(e.rhs)
        if isinstance(e, S.BinOp) and e.op in ("<<<", ">>>"):
            return self.needs_expected(e.lhs)
        if isinstance(e, S.If):
            return self.needs_expected(e.then) and self.needs_expected(e.els)
        if isinstance(e, S.Match):
            return all(self.needs_expected(b) for _, b in e.arms)
        if isinstance(e, S.Let):
            return self.needs_expected(e.body)
        return False

    def elab(self, e: S.Expr, expected: Ty | None) -> ir.Expr:
        out = self._elab(e, expected)
        if out.span is None:
            out.span = (e.start, e.end)
        return self.check(out, expected, e)

    def _elab(self, e: S.Expr, expected: Ty | None) -> ir.Expr:
        span = (e.start, e.end)
        if isinstance(e, S.Paren):
            inner = self.elab(e.expr, expected)
            return inner
        if isinstance(e, S.Ascribe):
            ty = self.elab_type(e.ty)
            return self.elab(e.expr, ty)
        if isinstance(e, S.Num):
            return self.elab_num(e, expected)
        if isinstance(e, S.DotIdent):
            if expected is None or expected.kind != "enum":
                raise self.err(f"cannot resolve `.{e.name}`: the expected type is not known "
                               "to be an enumeration (write `E.{e.name}`)" if expected is None
                               else f"`.{e.name}` used where `{expected}` is expected",
                               "P-TYPECHECK", e)
            en = self.enum_of(expected)
            if e.name not in en.ctors:
                raise self.err(f"`{e.name}` is not a constructor of `{en.name}`", "P-NAME", e)
            return ir.EnumLit(expected, index=en.ctors.index(e.name), span=span)
        if isinstance(e, S.Ident):
            return self.elab_app(e, [], expected, e)
        if isinstance(e, S.Proj):
            return self.elab_app(e, [], expected, e)
        if isinstance(e, S.App):
            return self.elab_app(e.fn, e.args, expected, e)
        if isinstance(e, S.UnOp):
            return self.elab_unop(e, expected)
        if isinstance(e, S.BinOp):
            return self.elab_binop(e, expected)
        if isinstance(e, S.If):
            cond = self.elab(e.cond, None)
            if not cond.ty.is_boolish:
                raise self.err(f"`if` condition must be a Bool or a decidable Prop, got "
                               f"`{cond.ty}`", "P-TYPECHECK", e.cond)
            if expected is None and self.needs_expected(e.then):
                els = self.elab(e.els, None)
                then = self.elab(e.then, els.ty)
            else:
                then = self.elab(e.then, expected)
                els = self.elab(e.els, expected or then.ty)
            if then.ty != els.ty and not (then.ty.is_boolish and els.ty.is_boolish):
                raise self.err(f"`else` branch has type `{els.ty}`, `then` branch `{then.ty}`",
                               "P-TYPECHECK", e.els)
            return ir.If(then.ty, cond=cond, then=then, els=els, span=span)
        if isinstance(e, S.Match):
            return self.elab_match(e, expected)
        if isinstance(e, S.Let):
            ty = self.elab_type(e.ty) if e.ty is not None else None
            value = self.elab(e.value, ty)
            uid = fresh_uid()
            saved = self.locals.get(e.name)
            self.locals[e.name] = Local(uid, value.ty)
            try:
                body = self.elab(e.body, expected)
            finally:
                if saved is None:
                    del self.locals[e.name]
                else:
                    self.locals[e.name] = saved
            return ir.Let(body.ty, name=e.name, uid=uid, value=value, body=body, span=span)
        if isinstance(e, S.StructInst):
            return self.elab_struct_inst(e, expected)
        if isinstance(e, S.Forall):
            if not self.statement:
                raise self.err("`∀` is only allowed in theorem statements", "P-EXPR", e)
            params = []
            saved_all = dict(self.locals)
            try:
                for name, tyx, pos in e.binders:
                    p = ir.Param(name, fresh_uid(), self.elab_type(tyx))
                    params.append(p)
                    self.locals[name] = Local(p.uid, p.ty)
                body = self.elab(e.body, PROP)
            finally:
                self.locals = saved_all
            return ir.Forall(PROP, params=params, body=body, span=span)
        raise self.err("expression outside the profile", "P-EXPR", e)

    def elab_num(self, e: S.Num, expected: Ty | None) -> ir.Expr:
        if e.width is not None:
            if not 1 <= e.width <= MAX_WIDTH:
                raise self.err(f"literal width {e.width} is outside 1…{MAX_WIDTH}", "P-LITERAL", e)
            return ir.BVLit(bv(e.width), value=e.value % (1 << e.width))
        if expected is None:
            raise self.err(f"numeric literal `{e.value}` needs a width: write `{e.value}#n` or "
                           f"`({e.value} : BitVec n)`", "P-LITERAL", e)
        if expected.kind != "bv":
            raise self.err(f"numeric literal where `{expected}` is expected", "P-LITERAL", e)
        return ir.BVLit(expected, value=e.value % (1 << expected.width))

    # ---- names and applications ---------------------------------------------------------------
    def head_of(self, fn: S.Expr) -> Head | ir.Expr:
        """Resolve the function position of an application (or a bare name)."""
        if isinstance(fn, S.Proj):
            base = self.elab(fn.expr, None)
            return self.project(base, fn.name, S.Node(start=fn.start, end=fn.end,
                                                      line=fn.name_line, col=fn.name_col))
        if not isinstance(fn, S.Ident):
            return self.elab(fn, None)
        comps = fn.name.split(".")
        if comps[0] in self.locals:
            loc = self.locals[comps[0]]
            cur: Head | ir.Expr = ir.Var(loc.ty, name=comps[0], uid=loc.uid,
                                         span=(fn.start, fn.start + len(comps[0])))
            return self.project_chain(cur, comps[1:], fn)
        if fn.name in ("true", "false", "Bool.true", "Bool.false"):
            return ir.BoolLit(BOOL, value=fn.name.endswith("true"))
        if fn.name in BUILTINS:
            return Head("builtin", fn.name, None)
        for k in range(len(comps), 0, -1):
            prefix = ".".join(comps[:k])
            r = self.resolve(prefix, fn)
            if r is None:
                continue
            qname, decl = r
            if isinstance(decl, ir.Def) and qname == self.current:
                raise self.err(f"`{prefix}` refers to the definition being defined: recursive "
                               "definitions are outside the profile", "P-DEF", fn)
            cur = self.decl_value(qname, decl, fn)
            return self.project_chain(cur, comps[k:], fn)
        if self.current and fn.name.split(".")[-1] == self.current.split(".")[-1]:
            raise self.err(f"`{fn.name}` refers to the definition being defined: recursive "
                           "definitions are outside the profile", "P-DEF", fn)
        if comps[0] in OUTSIDE_TYPES:
            raise self.err(f"`{fn.name}` is outside the profile", "P-TYPE", fn)
        raise self.err(f"unknown identifier `{fn.name}`", "P-NAME", fn)

    def decl_value(self, qname: str, decl: Decl, node: S.Node) -> Head | ir.Expr:
        if isinstance(decl, ir.Def):
            return Head("def", qname, decl)
        if isinstance(decl, CtorRef):
            return ir.EnumLit(Ty("enum", name=decl.enum.name), index=decl.index)
        if isinstance(decl, FieldRef):
            return Head("field", qname, decl)
        what = "a theorem" if isinstance(decl, TheoremRef) else "a type"
        raise self.err(f"`{qname}` is {what}, not a value", "P-EXPR", node)

    def project_chain(self, cur: Head | ir.Expr, names: list[str], node: S.Node) -> Head | ir.Expr:
        for name in names:
            if isinstance(cur, Head):
                raise self.err(f"`.{name}` applied to the function `{cur.name}` (apply it "
                               "first, in parentheses)", "P-EXPR", node)
            cur = self.project(cur, name, node)
        return cur

    def project(self, base: ir.Expr, name: str, node: S.Node) -> Head | ir.Expr:
        ty = base.ty
        if ty.kind == "struct":
            st = self.struct_of(ty)
            idx = st.index(name)
            if idx is not None:
                return ir.Field(st.fields[idx][1], expr=base, index=idx, name=name,
                                span=(node.start, node.end))
        if ty.kind in ("struct", "enum"):
            qn = f"{ty.name}.{name}"
            d = self.env.lookup(qn, self.visible)
            if isinstance(d, ir.Def):
                for i, p in enumerate(d.params):
                    if p.ty == ty:
                        return Head("def", qn, d, {i: base})
                raise self.err(f"`{qn}` has no explicit argument of type `{ty}`", "P-EXPR", node)
            raise self.err(f"`{ty.name}` has no field or function `{name}`", "P-FIELD", node)
        if ty.kind == "bv":
            qn = f"BitVec.{name}"
            if qn in BUILTINS:
                kinds = BUILTINS[qn]
                return Head("builtin", qn, None, {kinds.index("bv"): base})
            raise self.err(f"`BitVec.{name}` is outside the profile", "P-EXPR", node)
        raise self.err(f"`.{name}` on a value of type `{ty}` is outside the profile", "P-EXPR",
                       node)

    def elab_app(self, fn: S.Expr, args: list[S.Expr], expected: Ty | None,
                 node: S.Expr) -> ir.Expr:
        head = self.head_of(fn)
        span = (node.start, node.end)
        if not isinstance(head, Head):
            if args:
                raise self.err(f"`{_src_name(fn)}` is not a function", "P-EXPR", args[0])
            head.span = span if head.span is None else head.span
            return head
        if head.kind == "field":
            ref = head.decl
            assert isinstance(ref, FieldRef)
            if len(args) != 1:
                raise self.err(f"`{head.name}` takes exactly one argument", "P-EXPR", node)
            sty = Ty("struct", name=ref.struct.name)
            base = self.elab(args[0], sty)
            return ir.Field(ref.struct.fields[ref.index][1], expr=base, index=ref.index,
                            name=ref.struct.fields[ref.index][0], span=span)
        if head.kind == "builtin":
            return self.elab_builtin(head, args, node, expected)
        d = head.decl
        assert isinstance(d, ir.Def)
        nfree = len(d.params) - len(head.pre)
        if len(args) != nfree:
            what = "partial application" if len(args) < nfree else "too many arguments"
            raise self.err(f"{what}: `{head.name}` takes {nfree} argument(s), given {len(args)} "
                           "(the profile needs full applications)", "P-EXPR", node)
        it = iter(args)
        out = []
        for i, p in enumerate(d.params):
            out.append(head.pre[i] if i in head.pre else self.elab(next(it), p.ty))
        return ir.Call(d.ret, fn=head.name, args=out, span=span)

    def elab_builtin(self, head: Head, args: list[S.Expr], node: S.Expr,
                     expected: Ty | None) -> ir.Expr:
        kinds = BUILTINS[head.name]
        nfree = len(kinds) - len(head.pre)
        if len(args) != nfree:
            raise self.err(f"`{head.name}` takes {nfree} argument(s) here, given {len(args)}",
                           "P-EXPR", node)
        it = iter(args)
        nats: list[int] = []
        bvs: list[ir.Expr] = []
        pending: list[S.Expr] = []
        for i, k in enumerate(kinds):
            if i in head.pre:
                bvs.append(head.pre[i])
                continue
            a = next(it)
            if k == "nat":
                if not isinstance(a, S.Num) or a.width is not None:
                    raise self.err(f"argument of `{head.name}` must be a numeric literal (a "
                                   "`Nat`)", "P-TYPE", a)
                nats.append(a.value)
            else:
                pending.append(a)
        for a in pending:
            if bvs and self.needs_expected(a):
                bvs.append(self.elab(a, bvs[0].ty))
            else:
                bvs.append(self.elab(a, None))
        for a, b in zip(pending, bvs[-len(pending):] if pending else []):
            if b.ty.kind != "bv":
                raise self.err(f"argument of `{head.name}` must be a bit-vector", "P-TYPECHECK",
                               a)
        span = (node.start, node.end)
        name = head.name.split(".")[1]
        if name == "ofNat":
            n, k = nats
            if not 1 <= n <= MAX_WIDTH:
                raise self.err(f"width outside 1…{MAX_WIDTH}", "P-TYPE", node)
            return ir.BVLit(bv(n), value=k % (1 << n), span=span)
        if name in ("zeroExtend", "setWidth", "signExtend"):
            (n,) = nats
            if not 1 <= n <= MAX_WIDTH:
                raise self.err(f"width outside 1…{MAX_WIDTH}", "P-TYPE", node)
            op = "sext" if name == "signExtend" else "zext"
            return ir.Prim(bv(n), op=op, args=bvs, params=(n,), span=span)
        if name == "extractLsb'":
            start, length = nats
            if not 1 <= length <= MAX_WIDTH:
                raise self.err(f"extracted length outside 1…{MAX_WIDTH}", "P-TYPE", node)
            return ir.Prim(bv(length), op="extract", args=bvs, params=(start, length), span=span)
        a, b = bvs
        if a.ty != b.ty:
            raise self.err(f"`{head.name}` on `{a.ty}` and `{b.ty}`", "P-TYPECHECK", node)
        return ir.Prim(BOOL, op=name, args=[a, b], span=span)

    # ---- operators ----------------------------------------------------------------------------
    def elab_unop(self, e: S.UnOp, expected: Ty | None) -> ir.Expr:
        span = (e.start, e.end)
        if e.op in ("-", "~~~"):
            a = self.elab(e.arg, expected if expected and expected.kind == "bv" else None)
            if a.ty.kind != "bv":
                raise self.err(f"`{e.op}` needs a bit-vector, got `{a.ty}`", "P-TYPECHECK", e.arg)
            return ir.Prim(a.ty, op="bvneg" if e.op == "-" else "bvnot", args=[a], span=span)
        want = PROP if e.op == "¬" else BOOL
        a = self.elab(e.arg, want)
        return ir.Prim(want, op="not", args=[a], span=span)

    def elab_pair(self, e: S.BinOp, expected: Ty | None) -> tuple[ir.Expr, ir.Expr]:
        """Elaborate both operands at one common type (Lean's binop%/binrel%)."""
        if not self.needs_expected(e.lhs):
            lhs = self.elab(e.lhs, None)
            rhs = self.elab(e.rhs, lhs.ty)
        elif not self.needs_expected(e.rhs):
            rhs = self.elab(e.rhs, None)
            lhs = self.elab(e.lhs, rhs.ty)
        else:
            if expected is None:
                node = e.lhs if isinstance(e.lhs, S.Num) else e
                raise self.err("numeric literal needs a width: write `5#n` or `(5 : BitVec n)`"
                               if isinstance(e.lhs, S.Num) else
                               "cannot infer the type of the operands", "P-LITERAL", node)
            lhs = self.elab(e.lhs, expected)
            rhs = self.elab(e.rhs, expected)
        return lhs, rhs

    def elab_binop(self, e: S.BinOp, expected: Ty | None) -> ir.Expr:
        op = e.op
        span = (e.start, e.end)
        opnode = S.Node(start=e.start, end=e.end, line=e.op_line, col=e.op_col)
        if op in ARITH:
            lhs, rhs = self.elab_pair(e, expected if expected and expected.kind == "bv"
                                      else None)
            for x, n in ((lhs, e.lhs), (rhs, e.rhs)):
                if x.ty.kind != "bv":
                    raise self.err(f"`{op}` needs bit-vectors, got `{x.ty}`", "P-TYPECHECK", n)
            return ir.Prim(lhs.ty, op=ARITH[op], args=[lhs, rhs], span=span)
        if op in ("<<<", ">>>"):
            lhs = self.elab(e.lhs, expected if expected and expected.kind == "bv" else None)
            if lhs.ty.kind != "bv":
                raise self.err(f"`{op}` needs a bit-vector, got `{lhs.ty}`", "P-TYPECHECK", e.lhs)
            if isinstance(e.rhs, S.Num) and e.rhs.width is None:
                return ir.Prim(lhs.ty, op="bvshli" if op == "<<<" else "bvlshri", args=[lhs],
                               params=(e.rhs.value,), span=span)
            rhs = self.elab(e.rhs, None)
            if rhs.ty.kind != "bv":
                raise self.err(f"shift amount must be a bit-vector or a numeric literal, got "
                               f"`{rhs.ty}`", "P-TYPECHECK", e.rhs)
            return ir.Prim(lhs.ty, op="bvshl" if op == "<<<" else "bvlshr", args=[lhs, rhs],
                           span=span)
        if op == "++":
            for side in (e.lhs, e.rhs):
                if self.needs_expected(side):
                    raise self.err("operands of `++` need explicit widths (write `5#n`)",
                                   "P-LITERAL", side)
            lhs = self.elab(e.lhs, None)
            rhs = self.elab(e.rhs, None)
            for x, n in ((lhs, e.lhs), (rhs, e.rhs)):
                if x.ty.kind != "bv":
                    raise self.err(f"`++` needs bit-vectors, got `{x.ty}`", "P-TYPECHECK", n)
            w = lhs.ty.width + rhs.ty.width
            if w > MAX_WIDTH:
                raise self.err(f"`++` result width {w} exceeds {MAX_WIDTH}", "P-TYPE", opnode)
            return ir.Prim(bv(w), op="concat", args=[lhs, rhs], span=span)
        if op in CMP:
            lhs, rhs = self.elab_pair(e, None)
            if lhs.ty.kind != "bv":
                raise self.err(f"`{op}` compares bit-vectors (unsigned), got `{lhs.ty}`",
                               "P-TYPECHECK", e.lhs)
            return ir.Prim(PROP, op=CMP[op], args=[lhs, rhs], span=span)
        if op in ("=", "≠", "==", "!="):
            lhs, rhs = self.elab_pair(e, None)
            if lhs.ty != rhs.ty and not (lhs.ty.is_boolish and rhs.ty.is_boolish):
                raise self.err(f"`{op}` between `{lhs.ty}` and `{rhs.ty}`", "P-TYPECHECK", opnode)
            if lhs.ty == PROP and op in ("==", "!="):
                lhs.ty = BOOL
            ty = PROP if op in ("=", "≠") else BOOL
            return ir.Prim(ty, op="eq" if op in ("=", "==") else "ne", args=[lhs, rhs],
                           span=span)
        if op in ("&&", "||", "∧", "∨", "→", "↔"):
            ty = BOOL if op in ("&&", "||") else PROP
            lhs = self.elab(e.lhs, ty)
            rhs = self.elab(e.rhs, ty)
            name = {"&&": "and", "∧": "and", "||": "or", "∨": "or", "→": "implies",
                    "↔": "iff"}[op]
            return ir.Prim(ty, op=name, args=[lhs, rhs], span=span)
        raise self.err(f"operator `{op}` is outside the profile", "P-EXPR", opnode)

    # ---- match and structures -----------------------------------------------------------------
    def elab_match(self, e: S.Match, expected: Ty | None) -> ir.Expr:
        scrut = self.elab(e.scrut, None)
        if scrut.ty.kind != "enum":
            raise self.err(f"`match` on a value of type `{scrut.ty}`: the profile matches on "
                           "enumerations only", "P-MATCH", e.scrut)
        en = self.enum_of(scrut.ty)
        covered: set[int] = set()
        cases: list[tuple[list[int], ir.Expr]] = []
        if expected is None:
            for _, body in e.arms:
                if not self.needs_expected(body):
                    expected = self.elab(body, None).ty
                    break
        for pat, body in e.arms:
            if len(covered) == len(en.ctors):
                raise self.err("redundant alternative: every constructor is already covered",
                               "P-MATCH", pat)
            if pat.name == "_":
                idxs = [i for i in range(len(en.ctors)) if i not in covered]
            else:
                idx = self.pattern_ctor(pat, en)
                if idx in covered:
                    raise self.err(f"redundant alternative `{en.ctors[idx]}`", "P-MATCH", pat)
                idxs = [idx]
            covered.update(idxs)
            arm = self.elab(body, expected)
            if expected is None:
                expected = arm.ty
            cases.append((idxs, arm))
        missing = [c for i, c in enumerate(en.ctors) if i not in covered]
        if missing:
            raise self.err("non-exhaustive match: missing " + ", ".join(f".{c}" for c in missing),
                           "P-MATCH", e)
        return ir.Match(cases[0][1].ty, scrut=scrut, cases=cases, span=(e.start, e.end))

    def pattern_ctor(self, pat: S.Pattern, en: ir.Enum) -> int:
        if pat.dot:
            if pat.name not in en.ctors:
                raise self.err(f"`{pat.name}` is not a constructor of `{en.name}`", "P-MATCH", pat)
            return en.ctors.index(pat.name)
        r = self.resolve(pat.name, pat)
        if r is not None and isinstance(r[1], CtorRef) and r[1].enum is en:
            return r[1].index
        if r is not None and isinstance(r[1], CtorRef):
            raise self.err(f"`{pat.name}` is a constructor of `{r[1].enum.name}`, not of "
                           f"`{en.name}`", "P-MATCH", pat)
        raise self.err(f"pattern `{pat.name}` is not a constructor of `{en.name}` (variable "
                       "patterns are outside the profile; use `_`)", "P-MATCH", pat)

    def elab_struct_inst(self, e: S.StructInst, expected: Ty | None) -> ir.Expr:
        span = (e.start, e.end)
        ty = self.elab_type(e.ty) if e.ty is not None else None
        if e.base is not None:
            base = self.elab(e.base, ty or (expected if expected and expected.kind == "struct"
                                            else None))
            ty = base.ty
        else:
            ty = ty or expected
            base = None
        if ty is None or ty.kind != "struct":
            raise self.err("cannot tell the structure of this instance: add `: S` before `}` "
                           if ty is None else f"structure instance where `{ty}` is expected",
                           "P-TYPECHECK", e)
        st = self.struct_of(ty)
        if base is None:
            vals: dict[int, ir.Expr] = {}
            for f in e.fields:
                if len(f.path) != 1:
                    raise self.err("nested field paths need `{ s with … }`", "P-FIELD", f)
                idx = st.index(f.path[0])
                if idx is None:
                    raise self.err(f"`{st.name}` has no field `{f.path[0]}`", "P-FIELD", f)
                if idx in vals:
                    raise self.err(f"field `{f.path[0]}` given twice", "P-FIELD", f)
                vals[idx] = self.elab(f.value, st.fields[idx][1])
            missing = [n for i, (n, _, _) in enumerate(st.fields) if i not in vals]
            if missing:
                raise self.err(f"missing field(s) in `{st.name}` instance: " + ", ".join(missing),
                               "P-FIELD", e)
            return ir.MkStruct(ty, fields=[vals[i] for i in range(len(st.fields))], span=span)
        lets: list[tuple[str, int, ir.Expr]] = []
        if not isinstance(base, ir.Var):
            uid = fresh_uid()
            lets.append((f"_base{uid}", uid, base))
            base = ir.Var(ty, name=f"_base{uid}", uid=uid)
        out = self.build_update(base, st, [(f.path, f) for f in e.fields])
        out.span = span
        for name, uid, val in reversed(lets):
            out = ir.Let(out.ty, name=name, uid=uid, value=val, body=out, span=span)
        return out

    def build_update(self, base: ir.Expr, st: ir.Structure,
                     items: list[tuple[list[str], S.FieldInit]]) -> ir.Expr:
        groups: dict[int, list[tuple[list[str], S.FieldInit]]] = {}
        for path, f in items:
            idx = st.index(path[0])
            if idx is None:
                raise self.err(f"`{st.name}` has no field `{path[0]}`", "P-FIELD", f)
            groups.setdefault(idx, []).append((path[1:], f))
        updates: dict[int, ir.Expr] = {}
        for idx, subs in groups.items():
            fty = st.fields[idx][1]
            if any(not p for p, _ in subs):
                if len(subs) > 1:
                    raise self.err(f"field `{st.fields[idx][0]}` updated twice", "P-FIELD",
                                   subs[1][1])
                updates[idx] = self.elab(subs[0][1].value, fty)
                continue
            if fty.kind != "struct":
                raise self.err(f"field `{st.fields[idx][0]}` is not a structure", "P-FIELD",
                               subs[0][1])
            inner = ir.Field(fty, expr=base, index=idx, name=st.fields[idx][0])
            updates[idx] = self.build_update(inner, self.struct_of(fty), subs)
        return ir.Update(base.ty, base=base, updates=updates)


def _src_name(e: S.Expr) -> str:
    return e.name if isinstance(e, S.Ident) else "expression"
