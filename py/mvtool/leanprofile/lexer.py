"""Tokenizer for profile Lean source.

The lexer is total: characters the profile has no use for become ``OTHER`` tokens, so that
skipped regions (proofs) never fail to lex; the parser rejects them where a profile construct is
expected. Identifier characters follow Lean's rules (``'``, ``!``, ``?`` and subscripts may
continue an identifier; ``a.b.c`` is one dotted identifier).
"""

from __future__ import annotations

from dataclasses import dataclass

from mvtool.leanprofile.errors import ProfileError

_KEYWORD_TEXT = """
def abbrev theorem lemma structure inductive where deriving namespace end open import set_option
if then else match with let fun by instance class axiom opaque partial mutual private protected
noncomputable variable example macro syntax macro_rules termination_by decreasing_by section
universe attribute have show from at in do return unsafe elab notation infix infixl infixr prefix
postfix
"""
KEYWORDS = frozenset(_KEYWORD_TEXT.split())

_SYMBOL_TEXT = """
<<< >>> &&& ||| ^^^ ~~~ := => -> <-> /\\ \\/ != == <= >= && || ++ <| |> @[ ≠ ≤ ≥ → ↔ ∧ ∨ ¬ ∀ ∃
λ ⟨ ⟩ · ( ) { } [ ] , : ; | + - * / % < > = ! @ # $ ^ ~ & ? _
"""
SYMBOLS = sorted(_SYMBOL_TEXT.split(), key=len, reverse=True)

_SUBSCRIPTS = set("₀₁₂₃₄₅₆₇₈₉ₐₑₒₓₔₕₖₗₘₙₚₛₜᵢᵣᵤᵥⱼ")


def _ident_start(c: str) -> bool:
    if c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z"):
        return True
    if c in "λΠΣ":
        return False
    return ("\u03b1" <= c <= "\u03c9") or ("\u0391" <= c <= "\u03a9") or ("\u1f00" <= c <= "\u1ffe") \
        or ("\u2100" <= c <= "\u214f") or ("\U0001d49c" <= c <= "\U0001d59f")


def _ident_rest(c: str) -> bool:
    return _ident_start(c) or c.isdigit() or c in "'!?" or c in _SUBSCRIPTS


@dataclass(slots=True)
class Token:
    """One token: ``kind`` is IDENT, DOTIDENT (``.c``), PROJ (``.f`` glued to the previous token),
    NUM, STRING, DOC, KW, SYM, OTHER or EOF. ``value``/``width`` are set for NUM."""

    kind: str
    text: str
    line: int
    col: int
    pos: int
    end: int
    first_on_line: bool
    value: int = 0
    width: int | None = None

    def is_sym(self, *texts: str) -> bool:
        return self.kind == "SYM" and self.text in texts

    def is_kw(self, *texts: str) -> bool:
        return self.kind == "KW" and self.text in texts


def tokenize(src: str, file: str) -> list[Token]:
    """Split ``src`` into tokens (comments dropped, doc comments kept as DOC tokens)."""
    toks: list[Token] = []
    i, n = 0, len(src)
    line, line_start = 1, 0
    first = True

    def err(msg: str, at: int) -> ProfileError:
        return ProfileError(msg, "P-COMMENT", file, line, at - line_start + 1)

    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            line_start = i + 1
            first = True
            i += 1
            continue
        if c in " \t\r":
            i += 1
            continue
        start, sline, scol = i, line, i - line_start + 1
        if src.startswith("--", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if src.startswith("/-", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/-", j):
                    depth += 1
                    j += 2
                elif src.startswith("-/", j):
                    depth -= 1
                    j += 2
                else:
                    if src[j] == "\n":
                        line += 1
                        line_start = j + 1
                    j += 1
            if depth:
                raise ProfileError("unterminated comment", "P-COMMENT", file, sline, scol)
            text = src[i:j]
            i = j
            if text.startswith("/--") and not text.startswith("/---"):
                toks.append(Token("DOC", text, sline, scol, start, j, first))
                first = False
            continue
        if c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            if j >= n:
                raise err("unterminated string", i)
            i = j + 1
            toks.append(Token("STRING", src[start:i], sline, scol, start, i, first))
            first = False
            continue
        if c.isdigit():
            j = i
            if src.startswith(("0x", "0X"), i):
                j = i + 2
                while j < n and (src[j] in "0123456789abcdefABCDEF_"):
                    j += 1
                value = int(src[i + 2:j].replace("_", "") or "0", 16)
            elif src.startswith(("0b", "0B"), i):
                j = i + 2
                while j < n and src[j] in "01_":
                    j += 1
                value = int(src[i + 2:j].replace("_", "") or "0", 2)
            else:
                while j < n and (src[j].isdigit() or src[j] == "_"):
                    j += 1
                value = int(src[i:j].replace("_", ""))
            width = None
            if j + 1 < n and src[j] == "#" and src[j + 1].isdigit():
                k = j + 1
                while k < n and src[k].isdigit():
                    k += 1
                width = int(src[j + 1:k])
                j = k
            i = j
            toks.append(Token("NUM", src[start:i], sline, scol, start, i, first, value, width))
            first = False
            continue
        if c == "." and i + 1 < n and _ident_start(src[i + 1]):
            j = i + 1
            while j < n and _ident_rest(src[j]):
                j += 1
            glued = bool(toks) and toks[-1].end == i and (
                src[i - 1] in ")}]" or toks[-1].kind == "PROJ")
            kind = "PROJ" if glued else "DOTIDENT"
            toks.append(Token(kind, src[i + 1:j], sline, scol, start, j, first))
            i = j
            first = False
            continue
        if _ident_start(c) or c == "«":
            j = i
            while True:
                if j < n and src[j] == "«":
                    k = src.find("»", j)
                    if k < 0:
                        raise err("unterminated «identifier»", j)
                    j = k + 1
                else:
                    while j < n and _ident_rest(src[j]):
                        j += 1
                if j + 1 < n and src[j] == "." and (_ident_start(src[j + 1]) or src[j + 1] == "«"):
                    j += 1
                    continue
                break
            text = src[i:j]
            i = j
            kind = "KW" if text in KEYWORDS else "IDENT"
            if text == "_":
                kind = "SYM"
            toks.append(Token(kind, text, sline, scol, start, i, first))
            first = False
            continue
        for sym in SYMBOLS:
            if src.startswith(sym, i):
                i += len(sym)
                toks.append(Token("SYM", sym, sline, scol, start, i, first))
                break
        else:
            i += 1
            toks.append(Token("OTHER", c, sline, scol, start, i, first))
        first = False
    toks.append(Token("EOF", "", line, i - line_start + 1, n, n, True))
    return toks
