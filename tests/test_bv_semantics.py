"""Bit-vector corner cases: the SMT backend (``evaluate``) and the extracted Python must both give
the values Lean defines.

Lean references (Lean 4 core, ``Init/Data/BitVec``): ``BitVec.udiv_zero`` (x / 0 = 0),
``BitVec.umod_zero`` (x % 0 = x), ``BitVec.shiftLeft_eq_zero``/``ushiftRight_eq_zero`` (shift by
≥ width is 0), ``x <<< (y : BitVec m)`` = ``x <<< y.toNat``, ``extractLsb' start len x`` =
``ofNat len (x.toNat >>> start)``, ``setWidth``/``zeroExtend`` = ``ofNat v x.toNat`` (truncate or
extend), ``signExtend v x`` = ``ofInt v x.toInt``, ``x ++ y`` = ``x`` in the high bits,
``ofNat n k`` = ``k mod 2ⁿ``, ``<`` unsigned, ``slt``/``sle`` signed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mvtool.backends.smt import evaluate
from mvtool.extract import extract_model, load_generated
from mvtool.leanprofile import load_project

# (params, result type, body, args, Lean's value)
CASES: list[tuple[str, str, str, list[int], int | bool]] = [
    ("(a b : BitVec 8)", "BitVec 8", "a / b", [7, 0], 0),
    ("(a b : BitVec 8)", "BitVec 8", "a % b", [7, 0], 7),
    ("(a b : BitVec 8)", "BitVec 8", "a / b", [200, 7], 28),
    ("(a b : BitVec 8)", "BitVec 8", "a % b", [200, 7], 4),
    ("(a b : BitVec 64)", "BitVec 64", "a / b", [2**64 - 1, 0], 0),
    ("(a b : BitVec 8)", "BitVec 8", "a <<< b", [1, 7], 128),
    ("(a b : BitVec 8)", "BitVec 8", "a <<< b", [1, 8], 0),
    ("(a b : BitVec 8)", "BitVec 8", "a <<< b", [0xff, 255], 0),
    ("(a b : BitVec 8)", "BitVec 8", "a >>> b", [0x80, 7], 1),
    ("(a b : BitVec 8)", "BitVec 8", "a >>> b", [0x80, 8], 0),
    ("(a : BitVec 8) (b : BitVec 16)", "BitVec 8", "a <<< b", [1, 256], 0),
    ("(a : BitVec 8) (b : BitVec 16)", "BitVec 8", "a <<< b", [1, 3], 8),
    ("(a : BitVec 8) (b : BitVec 16)", "BitVec 8", "a >>> b", [0xff, 0x107], 0),
    ("(a : BitVec 32) (b : BitVec 4)", "BitVec 32", "a >>> b", [0xffffffff, 15], 0x1ffff),
    ("(a : BitVec 32) (b : BitVec 4)", "BitVec 32", "a <<< b", [0xffffffff, 15], 0xffff8000),
    ("(a : BitVec 4) (b : BitVec 64)", "BitVec 4", "a >>> b", [0xf, 2**63], 0),
    ("(a : BitVec 8)", "BitVec 8", "a <<< 9", [1], 0),
    ("(a : BitVec 8)", "BitVec 8", "a >>> 3", [0xf0], 0x1e),
    ("(a : BitVec 8)", "BitVec 8", "a.extractLsb' 4 8", [0xab], 0x0a),
    ("(a : BitVec 8)", "BitVec 4", "a.extractLsb' 8 4", [0xff], 0),
    ("(a : BitVec 8)", "BitVec 3", "a.extractLsb' 2 3", [0b10110100], 0b101),
    ("(a : BitVec 8)", "BitVec 4", "a.setWidth 4", [0xab], 0xb),
    ("(a : BitVec 8)", "BitVec 16", "a.setWidth 16", [0xab], 0xab),
    ("(a : BitVec 8)", "BitVec 16", "a.zeroExtend 16", [0xab], 0xab),
    ("(a : BitVec 8)", "BitVec 16", "BitVec.zeroExtend 16 a", [0x80], 0x80),
    ("(a : BitVec 8)", "BitVec 16", "a.signExtend 16", [0xab], 0xffab),
    ("(a : BitVec 8)", "BitVec 16", "a.signExtend 16", [0x2b], 0x2b),
    ("(a : BitVec 8)", "BitVec 4", "a.signExtend 4", [0xab], 0xb),
    ("(a : BitVec 8) (b : BitVec 4)", "BitVec 12", "a ++ b", [0xab, 0xc], 0xabc),
    ("(a b : BitVec 8)", "BitVec 8", "a + b", [200, 100], 44),
    ("(a b : BitVec 8)", "BitVec 8", "a - b", [1, 2], 255),
    ("(a b : BitVec 8)", "BitVec 8", "a * b", [16, 16], 0),
    ("(a b : BitVec 8)", "BitVec 8", "a * b", [15, 17], 255),
    ("(a : BitVec 8)", "BitVec 8", "-a", [1], 255),
    ("(a : BitVec 8)", "BitVec 8", "~~~a", [0x0f], 0xf0),
    ("(a b : BitVec 8)", "BitVec 8", "a &&& b ^^^ b ||| 1", [0xf0, 0x3c], 0x0d),
    ("(a : BitVec 8)", "BitVec 8", "a + 300", [0], 44),
    ("(a : BitVec 8)", "BitVec 8", "a + BitVec.ofNat 8 257", [1], 2),
    ("(a : BitVec 8)", "BitVec 8", "a + 0x1ff#8", [1], 0),
    ("(a b : BitVec 8)", "Bool", "a < b", [255, 1], False),
    ("(a b : BitVec 8)", "Bool", "a ≥ b", [255, 1], True),
    ("(a b : BitVec 8)", "Bool", "a.ult b", [255, 1], False),
    ("(a b : BitVec 8)", "Bool", "a.slt b", [255, 1], True),
    ("(a b : BitVec 8)", "Bool", "a.sle b", [0x80, 0x7f], True),
    ("(a b : BitVec 8)", "Bool", "a.sle b", [0x7f, 0x80], False),
    ("(a b : BitVec 8)", "Bool", "a == b || a != b", [3, 3], True),
    ("(a : BitVec 65) (b : BitVec 64)", "Bool",
     "a.ule (b.zeroExtend 65 + b.zeroExtend 65)", [2**64, 2**63], True),
]


@pytest.fixture(scope="module")
def semantics(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root: Path = tmp_path_factory.mktemp("bv")
    lines = ["namespace BV"]
    for i, (params, ret, body, _, _) in enumerate(CASES):
        lines.append(f"def case{i} {params} : {ret} :=\n  {body}")
    lines.append("end BV")
    (root / "MicroVMM/Model").mkdir(parents=True)
    (root / "MicroVMM/Model/BV.lean").write_text("\n".join(lines) + "\n", encoding="utf-8")
    project = load_project(root)
    module = load_generated(extract_model(project, "bv_extracted"), "bv_extracted")
    yield project, module
    del sys.modules["bv_extracted"]


@pytest.mark.parametrize("i", range(len(CASES)),
                         ids=[f"{c[2]}@{c[3]}" for c in CASES])
def test_smt_and_extracted_match_lean(semantics, i: int) -> None:  # type: ignore[no-untyped-def]
    project, module = semantics
    _, _, body, args, expected = CASES[i]
    smt_value = evaluate(project, f"BV.case{i}", args)
    py_value = getattr(module, f"case{i}")(*args)
    assert smt_value == expected, f"SMT: {body} on {args} = {smt_value}, Lean: {expected}"
    assert py_value == expected, f"Python: {body} on {args} = {py_value}, Lean: {expected}"
    assert type(py_value) is type(expected)
