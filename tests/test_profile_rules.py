"""The profile front end rejects what is outside the profile, with the right rule and location,
and accepts the fixtures and the repository's model."""

from __future__ import annotations

from pathlib import Path

import pytest
from mvtool.leanprofile import ProfileError, ir, load_project

FIXTURES = Path(__file__).parent / "fixtures" / "lean"
PRELUDE = """namespace T
structure S where
  a : BitVec 8
  b : Bool
  deriving DecidableEq, Repr
inductive E where
  | x
  | y
  | z
  deriving DecidableEq, Repr
"""
PRELUDE_LINES = PRELUDE.count("\n")

# (id, source appended after PRELUDE, rule, line relative to the appended text, column of the
# offending token: `Prop`, `:=`, the second `a :=`, the `b` in the else branch, `y`, `1`, `fun`, …)
BAD = [
    ("instance", "instance : Inhabited S := ⟨⟨0, true⟩⟩\n", "P-COMMAND", 1, 1),
    ("axiom", "axiom ax : True\n", "P-COMMAND", 1, 1),
    ("partial", "partial def f (x : BitVec 8) : BitVec 8 := x\n", "P-COMMAND", 1, 1),
    ("eval", "#eval 1\n", "P-COMMAND", 1, 1),
    ("extern", '@[extern "c_f"] def f (x : BitVec 8) : BitVec 8 := x\n', "P-COMMAND", 1, 3),
    ("where", "def f (x : BitVec 8) : BitVec 8 := g x\n  where g (y : BitVec 8) : BitVec 8 := y\n",
     "P-COMMAND", 2, 3),
    ("nat", "def f (x : Nat) : Bool := true\n", "P-TYPE", 1, 12),
    ("uint", "def f (x : UInt32) : Bool := true\n", "P-TYPE", 1, 12),
    ("fin", "def f (x : Fin 8) : Bool := true\n", "P-TYPE", 1, 12),
    ("prop-def", "def f (x : BitVec 8) : Prop := x = x\n", "P-TYPE", 1, 24),
    ("width0", "def f (x : BitVec 0) : Bool := true\n", "P-TYPE", 1, 12),
    ("recursive", "def f (x : BitVec 8) : BitVec 8 :=\n  if x = 0 then 0 else f (x - 1)\n",
     "P-DEF", 2, 24),
    ("implicit", "def f {x : BitVec 8} : BitVec 8 := x\n", "P-DEF", 1, 7),
    ("no-result-type", "def f (x : BitVec 8) := x\n", "P-DEF", 1, 22),
    ("missing-field", "def f : S := { a := 1 }\n", "P-FIELD", 1, 14),
    ("duplicate-field", "def f : S := { a := 1, b := true, a := 2 }\n", "P-FIELD", 1, 35),
    ("unknown-field", "def f (s : S) : S := { s with c := 1 }\n", "P-FIELD", 1, 31),
    ("non-exhaustive", "def f (e : E) : Bool :=\n  match e with\n  | .x => true\n  | .y => false\n",
     "P-MATCH", 2, 3),
    ("redundant", ("def f (e : E) : Bool :=\n  match e with\n  | .x => true\n  | _ => false\n"
                   "  | .y => true\n"), "P-MATCH", 5, 5),
    ("var-pattern", "def f (e : E) : Bool :=\n  match e with\n  | .x => true\n  | other => false\n",
     "P-MATCH", 4, 5),
    ("match-bv", "def f (v : BitVec 8) : Bool :=\n  match v with\n  | _ => true\n", "P-MATCH", 2, 9),
    ("width-mismatch", "def f (x : BitVec 8) (y : BitVec 16) : BitVec 8 := x + y\n",
     "P-TYPECHECK", 1, 56),
    ("bool-vs-bv", "def f (x : BitVec 8) (b : Bool) : BitVec 8 := if b then x else b\n",
     "P-TYPECHECK", 1, 64),
    ("unknown-ident", "def f (x : BitVec 8) : BitVec 8 := x + y\n", "P-NAME", 1, 40),
    ("unknown-ctor", "def f : E := .w\n", "P-NAME", 1, 14),
    ("literal-no-width", "def f (x : BitVec 8) : Bool := 1 = 2\n", "P-LITERAL", 1, 32),
    ("literal-concat", "def f (x : BitVec 8) : BitVec 16 := x ++ 1\n", "P-LITERAL", 1, 42),
    ("fun", "def f (x : BitVec 8) : BitVec 8 := (fun y => y) x\n", "P-EXPR", 1, 37),
    ("partial-app", "def g (x y : BitVec 8) : BitVec 8 := x\ndef f (x : BitVec 8) : BitVec 8 := g x\n",
     "P-EXPR", 2, 36),
    ("forall-in-def", "def f (x : BitVec 8) : Bool := ∀ y : BitVec 8, x = y\n", "P-EXPR", 1, 32),
    ("pow", "def f (x : BitVec 8) : BitVec 8 := x ^ 2\n", "P-EXPR", 1, 38),
    ("end-mismatch", "end U\n", "P-NAMESPACE", 1, 1),
    ("struct-params", "structure P (n : BitVec 8) where\n  a : Bool\n", "P-STRUCT", 1, 13),
    ("struct-default", "structure P where\n  a : Bool := true\n", "P-STRUCT", 2, 12),
    ("enum-args", "inductive F where\n  | a (v : Bool)\n", "P-ENUM", 2, 7),
    ("theorem-binder", "theorem t x : x = x := rfl\n", "P-THEOREM", 1, 11),
    ("open-unknown", "open Nowhere\n", "P-OPEN", 1, 1),
    ("option-in", "set_option maxHeartbeats 0 in\n", "P-OPTION", 1, 28),
    ("macro", 'macro "t" : tactic => `(tactic| rfl)\n', "P-MACRO", 1, 1),
    ("comment", "/- unterminated\n", "P-COMMENT", 1, 1),
    ("duplicate-def", "def f : Bool := true\ndef f : Bool := false\n", "P-NAME", 2, 5),
]


def write_project(root: Path, body: str, rel: str = "MicroVMM/Model/Bad.lean") -> str:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PRELUDE + body, encoding="utf-8")
    return rel


@pytest.mark.parametrize(("source", "rule", "line", "col"),
                         [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_rejects_with_rule_and_location(tmp_path: Path, source: str, rule: str, line: int,
                                        col: int) -> None:
    rel = write_project(tmp_path, source)
    with pytest.raises(ProfileError) as info:
        load_project(tmp_path)
    e = info.value
    assert (e.rule, e.file, e.line, e.col) == (rule, rel, PRELUDE_LINES + line, col), str(e)
    assert str(e).startswith(f"{rel}:{PRELUDE_LINES + line}:{col}: [{rule}] ")


def test_missing_import_is_p_import(tmp_path: Path) -> None:
    (tmp_path / "MicroVMM/Model").mkdir(parents=True)
    (tmp_path / "MicroVMM/Model/A.lean").write_text("import MicroVMM.Model.Nope\n")
    with pytest.raises(ProfileError) as info:
        load_project(tmp_path)
    assert (info.value.rule, info.value.line, info.value.col) == ("P-IMPORT", 1, 1)


def test_names_need_an_import(tmp_path: Path) -> None:
    """A declaration of another file is visible only through (transitive) imports, as in Lean."""
    (tmp_path / "MicroVMM/Model").mkdir(parents=True)
    (tmp_path / "MicroVMM/Model/A.lean").write_text("def one : BitVec 8 := 1\n")
    (tmp_path / "MicroVMM/Model/B.lean").write_text("def two : BitVec 8 := one + one\n")
    with pytest.raises(ProfileError) as info:
        load_project(tmp_path)
    assert info.value.rule == "P-NAME" and info.value.file == "MicroVMM/Model/B.lean"
    (tmp_path / "MicroVMM/Model/B.lean").write_text(
        "import MicroVMM.Model.A\ndef two : BitVec 8 := one + one\n")
    assert "two" in load_project(tmp_path).defs


def test_import_cycle(tmp_path: Path) -> None:
    (tmp_path / "MicroVMM/Model").mkdir(parents=True)
    (tmp_path / "MicroVMM/Model/A.lean").write_text("import MicroVMM.Model.B\n")
    (tmp_path / "MicroVMM/Model/B.lean").write_text("import MicroVMM.Model.A\n")
    with pytest.raises(ProfileError, match="cycle") as info:
        load_project(tmp_path)
    assert info.value.rule == "P-IMPORT"


def test_accepts_fixture_project() -> None:
    p = load_project(FIXTURES / "good")
    assert p.files[0] == "MicroVMM/Model/Basic.lean"
    assert set(p.theorems) == {f"MicroVMM.Obligations.{n}" for n in (
        "frozen_q0", "valid_preserved", "sel_frozen_false", "ring_slot_bound", "read_magic_and_sel")}
    assert p.enums["MicroVMM.Model.Phase"].ctors == ["reset", "acked", "featuresOk", "live",
                                                     "failed"]
    dev = p.structures["MicroVMM.Model.Dev"]
    assert [f for f, _, _ in dev.fields] == ["status", "phase", "sel", "q0", "q1", "irq"]
    th = p.theorems["MicroVMM.Obligations.frozen_q0"]
    assert [b.name for b in th.binders] == ["d", "off", "v"]
    assert th.doc.startswith("Writes after DRIVER_OK")


def test_accepts_repository_model() -> None:
    p = load_project()
    model = [d for d in p.defs.values() if d.file.startswith("MicroVMM/Model/")]
    assert model, "MicroVMM/Model defines no defs"
    assert any(d.name.endswith(".mmioWrite") for d in model)


def test_overrides_replace_text_without_touching_disk(tmp_path: Path) -> None:
    rel = write_project(tmp_path, "def f (x : BitVec 8) : BitVec 8 := x\n")
    before = (tmp_path / rel).read_text()
    bad = PRELUDE + "def f (x : BitVec 8) : BitVec 8 := x + true\n"
    with pytest.raises(ProfileError) as info:
        load_project(tmp_path, overrides={rel: bad})
    assert info.value.rule == "P-TYPECHECK"
    assert (tmp_path / rel).read_text() == before
    extra = {"MicroVMM/Model/Extra.lean": "import MicroVMM.Model.Bad\nnamespace T\n"
             "def g (s : S) : BitVec 8 := f s.a\nend T\n"}
    assert "T.g" in load_project(tmp_path, overrides=extra).defs
    assert not (tmp_path / "MicroVMM/Model/Extra.lean").exists()


def _ops(e: ir.Expr) -> str:
    """The operator tree of an expression, for precedence checks."""
    if isinstance(e, ir.Prim):
        return f"{e.op}({', '.join(_ops(a) for a in e.args)})"
    if isinstance(e, ir.Var):
        return e.name
    if isinstance(e, ir.BVLit):
        return str(e.value)
    return type(e).__name__


@pytest.mark.parametrize(("stmt", "tree"), [
    ("a + b <<< c = a", "eq(bvadd(a, bvshl(b, c)), a)"),
    ("a &&& b ^^^ c = a", "eq(bvxor(bvand(a, b), c), a)"),
    ("a ^^^ b ||| c = a", "eq(bvor(bvxor(a, b), c), a)"),
    ("a ||| b &&& c = a", "eq(bvor(a, bvand(b, c)), a)"),
    ("a * b + c = a", "eq(bvadd(bvmul(a, b), c), a)"),
    ("a - b - c = a", "eq(bvsub(bvsub(a, b), c), a)"),
    ("¬ a = b ∧ p", "and(not(eq(a, b)), p)"),
    ("!p && q = true", "and(not(p), eq(q, BoolLit))"),
    ("p ∧ q ∨ p → q", "implies(or(and(p, q), p), q)"),
    ("p → q → p", "implies(p, implies(q, p))"),
    ("p → q ↔ q", "iff(implies(p, q), q)"),
    ("~~~a + 1 = -a", "eq(bvadd(bvnot(a), 1), bvneg(a))"),
])
def test_lean_precedence(stmt: str, tree: str) -> None:
    p = load_project(FIXTURES / "good")
    th = p.typecheck_statement([("a", "BitVec 8"), ("b", "BitVec 8"), ("c", "BitVec 8"),
                                ("p", "Bool"), ("q", "Bool")], stmt)
    assert _ops(th.statement) == tree


def test_typecheck_statement_reports_errors() -> None:
    p = load_project(FIXTURES / "good")
    th = p.typecheck_statement([("d", "Dev"), ("v", "BitVec 32")],
                               "d.live = true → (mmioWrite d 0x70 v).q0 = d.q0",
                               namespace="MicroVMM.Obligations", opens=["MicroVMM.Model"])
    assert [b.name for b in th.binders] == ["d", "v"]
    with pytest.raises(ProfileError) as info:
        p.typecheck_statement([("d", "Dev")], "mmioWrite d 0x70 = d", opens=["MicroVMM.Model"])
    assert info.value.rule == "P-EXPR" and info.value.col == 1
    with pytest.raises(ProfileError) as info:
        p.typecheck_statement([("n", "Nat")], "n = n")
    assert info.value.rule == "P-TYPE"
