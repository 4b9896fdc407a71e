"""Parser for the MicroVMM Lean profile (hand-written, precedence climbing).

The grammar, in EBNF over the tokens of :mod:`mvtool.leanprofile.lexer` (``spec/profile.md``
has the authoritative table; rule ids in brackets)::

    file      ::= import* command*                                        [P-IMPORT]
    command   ::= doc? attrs? ( "namespace" ID | "end" ID? | "open" ID+   [P-NAMESPACE, P-OPEN]
                  | "set_option" ID value                                 [P-OPTION]
                  | "structure" ID "where" (doc? ID ":" type)* deriving?  [P-STRUCT]
                  | "inductive" ID "where"? (doc? "|" ID)+ deriving?      [P-ENUM]
                  | ("def" | "abbrev") ID binder* ":" type ":=" expr      [P-DEF]
                  | "theorem" ID binder* ":" expr ":=" <skipped proof> )  [P-THEOREM]
    binder    ::= "(" ID+ ":" type ")"
    type      ::= "Bool" | "Prop" | "BitVec" NUM | ID | "(" type ")"
    expr      ::= Pratt expression with Lean's precedences (table PREC below):
                  "∀" binders "," expr | "if" expr "then" expr "else" expr
                | "let" ID (":" type)? ":=" expr (";" | newline) expr
                | "match" expr "with" ("|" pattern "=>" expr)+
                | prefix-op expr | expr infix-op expr | app
    app       ::= atom atom*          atom ::= ID | .ID | NUM | "(" expr (":" type)? ")"
                                                | "{" (expr "with")? fields (":" type)? "}"
                                                | atom .ID   (projection)

Layout follows Lean's column rule where it matters: an application argument, or the
continuation of a ``let`` value or a structure-instance field, must not start a new line at or
left of the column of the enclosing ``let`` / field (Lean's ``colGt``); commands start at column 1.
"""

from __future__ import annotations

from mvtool.leanprofile import syntax as S
from mvtool.leanprofile.errors import ProfileError
from mvtool.leanprofile.lexer import Token, tokenize

#: infix operator -> (precedence, minimum precedence of the left operand, of the right operand)
PREC: dict[str, tuple[int, int, int]] = {}


def _infixl(p: int, *ops: str) -> None:
    for op in ops:
        PREC[op] = (p, p, p + 1)


def _infixr(p: int, *ops: str) -> None:
    for op in ops:
        PREC[op] = (p, p + 1, p)


def _infix(p: int, *ops: str) -> None:
    for op in ops:
        PREC[op] = (p, p + 1, p + 1)


_infixr(25, "→", "->")
_infix(20, "↔", "<->")
_infixr(30, "∨", "\\/")
_infixr(35, "∧", "/\\")
_infixl(30, "||")
_infixl(35, "&&")
_infix(50, "=", "≠", "==", "!=", "<", ">", "≤", "≥", "<=", ">=")
_infixl(55, "|||")
_infixl(58, "^^^")
_infixl(60, "&&&")
_infixl(65, "+", "-", "++")
_infixl(70, "*", "/", "%")
_infixl(75, "<<<", ">>>")
_infixr(80, "^")

#: canonical spelling of ASCII alternatives
CANON = {"->": "→", "<->": "↔", "\\/": "∨", "/\\": "∧", "<=": "≤", ">=": "≥"}

MAX_PREC = 1024
COMMAND_KWS = {"def", "abbrev", "theorem", "structure", "inductive", "namespace", "end", "open",
               "set_option", "import"}
FORBIDDEN_EXPR = {
    "fun": "lambda expressions", "λ": "lambda expressions", "∃": "existential quantifiers",
    "⟨": "anonymous constructors", "have": "`have`", "show": "`show`", "by": "tactic blocks",
    "do": "`do` blocks", "return": "`return`", "·": "`·` placeholders", "$": "`$` application",
    "<|": "`<|` application", "|>": "`|>` application", "[": "list literals", "@": "explicit `@`",
    "_": "placeholders `_`",
}
BAD_ATTRS = {"extern", "implemented_by", "export", "csimp", "never_extract"}


class Parser:
    def __init__(self, text: str, file: str, *, allow_imports: bool = True):
        self.text = text
        self.file = file
        self.toks = tokenize(text, file)
        self.i = 0
        self.layout: list[int] = [1]
        self.allow_imports = allow_imports

    # ---- token helpers ------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def advance(self) -> Token:
        t = self.toks[self.i]
        if t.kind != "EOF":
            self.i += 1
        return t

    def prev_end(self) -> int:
        return self.toks[self.i - 1].end if self.i else 0

    def error(self, msg: str, rule: str, tok: Token | None = None) -> ProfileError:
        t = tok or self.tok
        return ProfileError(msg, rule, self.file, t.line, t.col)

    def describe(self, t: Token) -> str:
        return "end of file" if t.kind == "EOF" else f"`{t.text}`"

    def expect_sym(self, sym: str, rule: str, what: str = "") -> Token:
        if not self.tok.is_sym(sym):
            raise self.error(f"expected `{sym}`{what}, found {self.describe(self.tok)}", rule)
        return self.advance()

    def expect_ident(self, rule: str, what: str) -> Token:
        if self.tok.kind != "IDENT":
            raise self.error(f"expected {what}, found {self.describe(self.tok)}", rule)
        return self.advance()

    def at_layout_stop(self) -> bool:
        t = self.tok
        return t.kind == "EOF" or (t.first_on_line and t.col <= self.layout[-1])

    def node(self, start: Token) -> dict[str, int]:
        return {"start": start.pos, "end": self.prev_end(), "line": start.line, "col": start.col}

    # ---- file and commands --------------------------------------------------------------------
    def parse_module(self) -> S.Module:
        mod = S.Module(self.file, self.text)
        seen_command = False
        while self.tok.kind != "EOF":
            t = self.tok
            if t.is_kw("import"):
                if seen_command:
                    raise self.error("`import` must come before every other command", "P-IMPORT")
                self.advance()
                name = self.expect_ident("P-IMPORT", "a module name")
                cmd = S.ImportCmd(module=name.text, **self.node(t))
                mod.imports.append(cmd)
                continue
            seen_command = True
            cmd = self.parse_command()
            if cmd is not None:
                mod.commands.append(cmd)
        return mod

    def command_start(self) -> None:
        t = self.tok
        if t.kind != "EOF" and not (t.first_on_line and t.col == 1):
            raise self.error(f"unexpected {self.describe(t)}: expected the end of the command",
                             "P-EXPR" if t.kind != "KW" else "P-COMMAND")

    def parse_command(self) -> S.Command | None:
        doc = ""
        if self.tok.kind == "DOC":
            doc = _doc_text(self.advance().text)
        if self.tok.is_sym("@["):
            self.parse_attributes()
        t = self.tok
        if t.kind == "DOC":
            raise self.error("two doc comments in a row", "P-COMMENT")
        if t.kind != "KW":
            if t.is_sym("#"):
                raise self.error(f"`#{self.peek().text}` commands are outside the profile",
                                 "P-COMMAND")
            raise self.error(f"unexpected {self.describe(t)}: expected a command", "P-COMMAND")
        kw = t.text
        if kw == "import":
            raise self.error("`import` must come before every other command", "P-IMPORT")
        if kw in ("macro", "syntax", "macro_rules", "elab", "notation", "infix", "infixl",
                  "infixr", "prefix", "postfix"):
            raise self.error(f"`{kw}` is only allowed in MicroVMM/Tactic.lean", "P-MACRO")
        if kw not in COMMAND_KWS:
            raise self.error(f"`{kw}` is outside the profile", "P-COMMAND")
        self.advance()
        if kw == "namespace":
            name = self.expect_ident("P-NAMESPACE", "a namespace name")
            cmd: S.Command = S.NamespaceCmd(name=name.text, **self.node(t))
        elif kw == "end":
            name_text = ""
            if self.tok.kind == "IDENT" and not self.tok.first_on_line:
                name_text = self.advance().text
            cmd = S.EndCmd(name=name_text, **self.node(t))
        elif kw == "open":
            names = []
            while self.tok.kind == "IDENT" and not self.tok.first_on_line:
                names.append(self.advance().text)
            if not names:
                raise self.error("expected a namespace after `open`", "P-OPEN")
            if self.tok.is_kw("in"):
                raise self.error("`open … in` is outside the profile", "P-OPEN")
            cmd = S.OpenCmd(names=names, **self.node(t))
        elif kw == "set_option":
            self.expect_ident("P-OPTION", "an option name")
            v = self.advance()
            if v.kind not in ("IDENT", "NUM", "STRING"):
                raise self.error("expected an option value", "P-OPTION", v)
            if self.tok.is_kw("in"):
                raise self.error("`set_option … in` is outside the profile", "P-OPTION")
            self.command_start()
            return None
        elif kw == "structure":
            cmd = self.parse_structure(t)
        elif kw == "inductive":
            cmd = self.parse_inductive(t)
        elif kw in ("def", "abbrev"):
            cmd = self.parse_def(t)
        else:
            cmd = self.parse_theorem(t)
        cmd.doc = doc
        self.command_start()
        return cmd

    def parse_attributes(self) -> None:
        open_tok = self.advance()
        depth = 1
        first = True
        while depth:
            t = self.advance()
            if t.kind == "EOF":
                raise self.error("unterminated attribute list", "P-COMMAND", open_tok)
            if first and t.kind == "IDENT" and t.text in BAD_ATTRS:
                raise self.error(f"`@[{t.text}]` is outside the profile (declare it in "
                                 "MicroVMM/FFI)", "P-COMMAND", t)
            first = t.is_sym(",")
            if t.is_sym("[", "@["):
                depth += 1
            elif t.is_sym("]"):
                depth -= 1

    def parse_deriving(self) -> None:
        if self.tok.is_kw("deriving"):
            self.advance()
            self.expect_ident("P-STRUCT", "a class name after `deriving`")
            while self.tok.is_sym(","):
                self.advance()
                self.expect_ident("P-STRUCT", "a class name after `deriving`")

    def parse_structure(self, t: Token) -> S.StructureCmd:
        name = self.expect_ident("P-STRUCT", "a structure name")
        if not self.tok.is_kw("where"):
            raise self.error("expected `where` (parameters and `extends` are outside the "
                             "profile)", "P-STRUCT")
        self.advance()
        fields = []
        while True:
            doc = ""
            if self.tok.kind == "DOC":
                doc = _doc_text(self.advance().text)
            if self.tok.kind != "IDENT" or (self.tok.first_on_line and self.tok.col == 1):
                if doc:
                    raise self.error("doc comment without a field", "P-STRUCT")
                break
            ft = self.advance()
            names = [ft]
            while self.tok.kind == "IDENT" and not self.tok.first_on_line:
                names.append(self.advance())
            self.expect_sym(":", "P-STRUCT", " after a field name")
            ty = self.parse_type("P-STRUCT")
            if self.tok.is_sym(":="):
                raise self.error("field defaults are outside the profile", "P-STRUCT")
            for n in names:
                fields.append((n.text, ty, doc, S.Node(start=n.pos, end=n.end, line=n.line,
                                                       col=n.col)))
        if not fields:
            raise self.error("a structure needs at least one field", "P-STRUCT", name)
        self.parse_deriving()
        return S.StructureCmd(name=name.text, fields=fields, **self.node(t))

    def parse_inductive(self, t: Token) -> S.InductiveCmd:
        name = self.expect_ident("P-ENUM", "an inductive type name")
        if self.tok.is_kw("where"):
            self.advance()
        elif not self.tok.is_sym("|"):
            raise self.error("expected `where` (indices and parameters are outside the profile)",
                             "P-ENUM")
        ctors = []
        while True:
            doc = ""
            if self.tok.kind == "DOC":
                doc = _doc_text(self.advance().text)
            if not self.tok.is_sym("|"):
                if doc:
                    raise self.error("doc comment without a constructor", "P-ENUM")
                break
            self.advance()
            c = self.expect_ident("P-ENUM", "a constructor name")
            if not (self.tok.is_kw("deriving") or self.tok.is_sym("|") or self.tok.kind == "DOC"
                    or self.tok.first_on_line):
                raise self.error("constructors with arguments are outside the profile", "P-ENUM")
            ctors.append((c.text, doc, S.Node(start=c.pos, end=c.end, line=c.line, col=c.col)))
        if not ctors:
            raise self.error("an enumeration needs at least one constructor", "P-ENUM", name)
        self.parse_deriving()
        return S.InductiveCmd(name=name.text, ctors=ctors, **self.node(t))

    def parse_binders(self, rule: str) -> list[S.Binder]:
        binders = []
        while not self.tok.is_sym(":"):
            t = self.tok
            if t.is_sym("{", "[", "⦃") or t.text in ("{", "[", "⦃"):
                raise self.error("implicit and instance binders are outside the profile", rule)
            if t.kind == "IDENT":
                raise self.error("binders need a type: write `(x : T)`", rule)
            if not t.is_sym("("):
                raise self.error(f"expected a binder `(x : T)` or `:`, found {self.describe(t)}",
                                 rule)
            self.advance()
            names = [self.expect_ident(rule, "a binder name")]
            while self.tok.kind == "IDENT":
                names.append(self.advance())
            self.expect_sym(":", rule, " in a binder")
            ty = self.parse_type(rule)
            self.expect_sym(")", rule, " closing a binder")
            for n in names:
                binders.append(S.Binder(name=n.text, ty=ty, start=n.pos, end=n.end, line=n.line,
                                        col=n.col))
        return binders

    def parse_def(self, t: Token) -> S.DefCmd:
        name = self.expect_ident("P-DEF", "a definition name")
        binders = self.parse_binders("P-DEF")
        self.advance()  # ':'
        ret = self.parse_type("P-DEF")
        if self.tok.is_sym("|"):
            raise self.error("definitions by pattern matching equations are outside the "
                             "profile; use `match`", "P-DEF")
        self.expect_sym(":=", "P-DEF", " (explicit result type, then `:=`)")
        body = self.parse_expr()
        if self.tok.is_kw("where", "termination_by", "decreasing_by"):
            raise self.error(f"`{self.tok.text}` is outside the profile", "P-COMMAND")
        return S.DefCmd(name=name.text, binders=binders, ret=ret, body=body, name_line=name.line,
                        name_col=name.col, **self.node(t))

    def parse_theorem(self, t: Token) -> S.TheoremCmd:
        name = self.expect_ident("P-THEOREM", "a theorem name")
        binders = self.parse_binders("P-THEOREM")
        self.advance()  # ':'
        stmt = self.parse_expr()
        self.expect_sym(":=", "P-THEOREM", " before the proof")
        pstart = self.tok.pos
        while True:  # skip the proof: everything up to the next command at column 1
            u = self.tok
            if u.kind == "EOF" or (u.first_on_line and u.col == 1):
                break
            self.advance()
        proof = self.text[pstart:self.prev_end()]
        return S.TheoremCmd(name=name.text, binders=binders, stmt=stmt, proof_text=proof,
                            **self.node(t))

    # ---- types --------------------------------------------------------------------------------
    def parse_type(self, rule: str) -> S.TypeExpr:
        t = self.tok
        if t.is_sym("("):
            self.advance()
            ty = self.parse_type(rule)
            self.expect_sym(")", rule)
            return ty
        if t.kind != "IDENT":
            raise self.error(f"expected a type, found {self.describe(t)}", "P-TYPE")
        self.advance()
        if t.text == "BitVec":
            w = self.tok
            paren = w.is_sym("(")
            if paren:
                self.advance()
                w = self.tok
            if w.kind != "NUM" or w.width is not None:
                raise self.error("`BitVec n` needs a numeric literal width", "P-TYPE", w)
            self.advance()
            if paren:
                self.expect_sym(")", "P-TYPE")
            ty = S.TypeExpr(kind="bitvec", width=w.value, **self.node(t))
        elif t.text == "Bool":
            ty = S.TypeExpr(kind="bool", **self.node(t))
        elif t.text == "Prop":
            ty = S.TypeExpr(kind="prop", **self.node(t))
        else:
            # type applications (`Fin 8`, `Array S`) are outside the profile
            while self.tok.kind in ("IDENT", "NUM") and not self.tok.first_on_line:
                self.advance()
            text = self.text[t.pos:self.prev_end()]
            kind = "name" if text == t.text else "bad"
            ty = S.TypeExpr(kind=kind, name=t.text, bad=text, **self.node(t))
        if self.tok.is_sym("→", "->", "×"):
            raise self.error("function and product types are outside the profile", "P-TYPE",
                             self.tok)
        return ty

    # ---- expressions --------------------------------------------------------------------------
    def parse_expr(self, min_prec: int = 0) -> S.Expr:
        start = self.tok
        lhs, lhs_prec = self.parse_prefix()
        while True:
            t = self.tok
            if t.kind != "SYM" or t.text not in PREC or self.at_layout_stop():
                break
            prec, lmin, rmin = PREC[t.text]
            if prec < min_prec or lhs_prec < lmin:
                break
            self.advance()
            rhs = self.parse_expr(rmin)
            lhs = S.BinOp(op=CANON.get(t.text, t.text), lhs=lhs, rhs=rhs, op_line=t.line,
                          op_col=t.col, **self.node(start))
            lhs_prec = prec
        return lhs

    def parse_prefix(self) -> tuple[S.Expr, int]:
        t = self.tok
        if t.kind in ("SYM", "OTHER") and t.text in FORBIDDEN_EXPR:
            raise self.error(f"{FORBIDDEN_EXPR[t.text]} are outside the profile"
                             if FORBIDDEN_EXPR[t.text].endswith("s")
                             else f"{FORBIDDEN_EXPR[t.text]} is outside the profile", "P-EXPR")
        if t.kind == "KW" and t.text in FORBIDDEN_EXPR:
            raise self.error(f"{FORBIDDEN_EXPR[t.text]} is outside the profile"
                             if not FORBIDDEN_EXPR[t.text].endswith("s")
                             else f"{FORBIDDEN_EXPR[t.text]} are outside the profile", "P-EXPR")
        if t.is_sym("¬", "!"):
            self.advance()
            arg = self.parse_expr(40)
            return S.UnOp(op=t.text, arg=arg, **self.node(t)), MAX_PREC
        if t.is_sym("-"):
            self.advance()
            arg = self.parse_expr(75)
            return S.UnOp(op="-", arg=arg, **self.node(t)), 75
        if t.is_sym("~~~"):
            self.advance()
            arg = self.parse_expr(100)
            return S.UnOp(op="~~~", arg=arg, **self.node(t)), 100
        if t.is_sym("∀"):
            return self.parse_forall(), 0
        if t.is_kw("if"):
            return self.parse_if(), 0
        if t.is_kw("let"):
            return self.parse_let(), 0
        if t.is_kw("match"):
            return self.parse_match(), 0
        head = self.parse_atom()
        args = []
        while self.is_atom_start() and not self.at_layout_stop():
            args.append(self.parse_atom())
        if args:
            return S.App(fn=head, args=args, **self.node(t)), MAX_PREC
        return head, MAX_PREC

    def is_atom_start(self) -> bool:
        t = self.tok
        return t.kind in ("IDENT", "NUM", "DOTIDENT") or t.is_sym("(", "{")

    def parse_atom(self) -> S.Expr:
        t = self.tok
        e: S.Expr
        if t.kind == "IDENT":
            self.advance()
            e = S.Ident(name=t.text, **self.node(t))
        elif t.kind == "DOTIDENT":
            self.advance()
            e = S.DotIdent(name=t.text, **self.node(t))
        elif t.kind == "NUM":
            self.advance()
            e = S.Num(value=t.value, width=t.width, **self.node(t))
        elif t.is_sym("("):
            self.advance()
            self.layout.append(0)
            try:
                if self.tok.is_sym(")"):
                    raise self.error("`()` is outside the profile", "P-EXPR")
                inner = self.parse_expr()
                if self.tok.is_sym(":"):
                    self.advance()
                    ty = self.parse_type("P-EXPR")
                    self.expect_sym(")", "P-EXPR")
                    e = S.Ascribe(expr=inner, ty=ty, **self.node(t))
                else:
                    if self.tok.is_sym(","):
                        raise self.error("tuples are outside the profile", "P-EXPR")
                    self.expect_sym(")", "P-EXPR")
                    e = S.Paren(expr=inner, **self.node(t))
            finally:
                self.layout.pop()
        elif t.is_sym("{"):
            e = self.parse_struct_inst()
        else:
            if t.kind in ("SYM", "OTHER") and t.text in FORBIDDEN_EXPR:
                return self.parse_prefix()[0]
            raise self.error(f"unexpected {self.describe(t)}: expected an expression", "P-EXPR")
        while self.tok.kind == "PROJ":
            p = self.advance()
            e = S.Proj(expr=e, name=p.text, name_line=p.line, name_col=p.col + 1,
                       **self.node(t))
        return e

    def parse_struct_inst(self) -> S.StructInst:
        t = self.advance()
        self.layout.append(0)
        base = None
        try:
            if not (self.tok.kind == "IDENT" and self.peek().is_sym(":=")):
                base = self.parse_expr()
                if not self.tok.is_kw("with"):
                    if self.tok.is_sym("//"):
                        raise self.error("subtypes are outside the profile", "P-EXPR")
                    raise self.error(f"expected `with` or `field := value`, found "
                                     f"{self.describe(self.tok)}", "P-EXPR")
                self.advance()
            fields: list[S.FieldInit] = []
            ty = None
            while not self.tok.is_sym("}"):
                f = self.tok
                if f.is_sym(":"):
                    self.advance()
                    ty = self.parse_type("P-EXPR")
                    break
                if f.kind != "IDENT":
                    raise self.error(f"expected `field := value`, found {self.describe(f)}",
                                     "P-EXPR")
                self.advance()
                self.expect_sym(":=", "P-EXPR", " after a field name")
                self.layout.append(f.col if f.first_on_line else 0)
                try:
                    value = self.parse_expr()
                finally:
                    self.layout.pop()
                fields.append(S.FieldInit(path=f.text.split("."), value=value, **self.node(f)))
                if self.tok.is_sym(","):
                    self.advance()
                elif not (self.tok.is_sym("}", ":") or self.tok.first_on_line):
                    raise self.error(f"expected `,` or `}}`, found {self.describe(self.tok)}",
                                     "P-EXPR")
            self.expect_sym("}", "P-EXPR")
        finally:
            self.layout.pop()
        if not fields:
            raise self.error("empty structure instance", "P-EXPR", t)
        return S.StructInst(base=base, fields=fields, ty=ty, **self.node(t))

    def parse_forall(self) -> S.Forall:
        t = self.advance()
        binders: list[tuple[str, S.TypeExpr, S.Node]] = []
        if self.tok.is_sym("("):
            while self.tok.is_sym("("):
                self.advance()
                names = [self.expect_ident("P-EXPR", "a bound variable")]
                while self.tok.kind == "IDENT":
                    names.append(self.advance())
                self.expect_sym(":", "P-EXPR", " (bound variables need a type)")
                ty = self.parse_type("P-EXPR")
                self.expect_sym(")", "P-EXPR")
                binders += [(n.text, ty, _pos(n)) for n in names]
        else:
            names = [self.expect_ident("P-EXPR", "a bound variable")]
            while self.tok.kind == "IDENT":
                names.append(self.advance())
            self.expect_sym(":", "P-EXPR", " (bound variables need a type)")
            ty = self.parse_type("P-EXPR")
            binders += [(n.text, ty, _pos(n)) for n in names]
        self.expect_sym(",", "P-EXPR", " after the bound variables")
        body = self.parse_expr()
        return S.Forall(binders=binders, body=body, **self.node(t))

    def parse_if(self) -> S.If:
        t = self.advance()
        if self.tok.kind == "IDENT" and self.peek().is_sym(":"):
            raise self.error("dependent `if h : c` is outside the profile", "P-EXPR")
        self.layout.append(0)
        try:
            cond = self.parse_expr()
            if not self.tok.is_kw("then"):
                raise self.error(f"expected `then`, found {self.describe(self.tok)}", "P-EXPR")
            self.advance()
            then = self.parse_expr()
        finally:
            self.layout.pop()
        if not self.tok.is_kw("else"):
            raise self.error(f"expected `else`, found {self.describe(self.tok)}", "P-EXPR")
        self.advance()
        els = self.parse_expr()
        return S.If(cond=cond, then=then, els=els, **self.node(t))

    def parse_let(self) -> S.Let:
        t = self.advance()
        if self.tok.is_kw("rec") or self.tok.text == "rec":
            raise self.error("`let rec` is outside the profile", "P-EXPR")
        name = self.expect_ident("P-EXPR", "a name after `let` (patterns are outside the "
                                 "profile)")
        if "." in name.text:
            raise self.error("a `let` name must not be dotted", "P-EXPR", name)
        ty = None
        if self.tok.is_sym(":"):
            self.advance()
            ty = self.parse_type("P-EXPR")
        if self.tok.kind in ("IDENT",) or self.tok.is_sym("("):
            raise self.error("local functions are outside the profile", "P-EXPR")
        self.expect_sym(":=", "P-EXPR", " in `let`")
        self.layout.append(t.col if t.first_on_line else self.layout[-1])
        try:
            value = self.parse_expr()
        finally:
            self.layout.pop()
        if self.tok.is_sym(";"):
            self.advance()
        elif not self.tok.first_on_line:
            raise self.error(f"expected `;` or a new line after the `let` value, found "
                             f"{self.describe(self.tok)}", "P-EXPR")
        body = self.parse_expr()
        return S.Let(name=name.text, ty=ty, value=value, body=body, **self.node(t))

    def parse_match(self) -> S.Match:
        t = self.advance()
        self.layout.append(0)
        try:
            scrut = self.parse_expr()
        finally:
            self.layout.pop()
        if self.tok.is_sym(","):
            raise self.error("matching on several values is outside the profile", "P-EXPR")
        if not self.tok.is_kw("with"):
            raise self.error(f"expected `with`, found {self.describe(self.tok)}", "P-EXPR")
        self.advance()
        arms = []
        while self.tok.is_sym("|"):
            self.advance()
            p = self.tok
            if p.kind == "DOTIDENT":
                pat = S.Pattern(name=p.text, dot=True, **_posd(p))
            elif p.kind == "IDENT":
                pat = S.Pattern(name=p.text, dot=False, **_posd(p))
            elif p.is_sym("_"):
                pat = S.Pattern(name="_", dot=False, **_posd(p))
            else:
                raise self.error(f"expected a constructor pattern, found {self.describe(p)}",
                                 "P-MATCH")
            self.advance()
            if self.tok.is_sym(",", "|"):
                raise self.error("alternative patterns and tuples are outside the profile",
                                 "P-MATCH")
            if not self.tok.is_sym("=>"):
                raise self.error("constructor patterns take no arguments in the profile"
                                 if self.tok.kind in ("IDENT", "DOTIDENT")
                                 else f"expected `=>`, found {self.describe(self.tok)}",
                                 "P-MATCH")
            self.advance()
            body = self.parse_expr()
            arms.append((pat, body))
        if not arms:
            raise self.error("`match` without alternatives", "P-MATCH", t)
        return S.Match(scrut=scrut, arms=arms, **self.node(t))


def _pos(t: Token) -> S.Node:
    return S.Node(**_posd(t))


def _posd(t: Token) -> dict[str, int]:
    return {"start": t.pos, "end": t.end, "line": t.line, "col": t.col}


def _doc_text(raw: str) -> str:
    body = raw[3:-2]
    lines = [ln.strip() for ln in body.strip().splitlines()]
    return "\n".join(lines).strip()


def parse_module(text: str, file: str) -> S.Module:
    """Parse one file's text; ``file`` is used in error locations."""
    return Parser(text, file).parse_module()


def parse_expression(text: str, file: str) -> S.Expr:
    """Parse a standalone expression (a catalogue statement); it must span the whole text."""
    p = Parser(text, file)
    p.layout = [0]
    e = p.parse_expr()
    if p.tok.kind != "EOF":
        raise p.error(f"unexpected {p.describe(p.tok)} after the expression", "P-EXPR")
    return e


def parse_type_text(text: str, file: str) -> S.TypeExpr:
    """Parse a standalone type (a catalogue binder type)."""
    p = Parser(text, file)
    p.layout = [0]
    ty = p.parse_type("P-TYPE")
    if p.tok.kind != "EOF":
        raise p.error(f"unexpected {p.describe(p.tok)} after the type", "P-TYPE")
    return ty
