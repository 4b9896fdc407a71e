"""The invariant catalogue: validation, schema, coverage, and bad input through the CLI.

Bad-input tests run ``python -m mvtool gen`` on a copy of the repository (``MVTOOL_ROOT``) and
check: one ``mvtool: error:`` line naming the entry and field, a non-zero exit, and no generated
file touched (contents and modification times).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mvtool import catalogue as cat
from mvtool.errors import MvtoolError
from mvtool.paths import ROOT

GENERATED = ("MicroVMM/Obligations", "MicroVMM/Obligations.lean", cat.SCHEMA_PATH)


def test_catalogue_loads_and_covers_design_section_5() -> None:
    c = cat.load_catalogue(ROOT)
    ids = [ob.id for ob in c.obligations]
    assert len(ids) >= 20 and len(set(ids)) == len(ids)
    assert {ob.kind for ob in c.obligations} == {"invariant", "transition", "refinement", "frame"}
    text = " ".join(ob.statement for ob in c.obligations)
    for needle in ("mmioWrite", "mmioRead", "wellFormed", "refines", "activeValid", "within",
                   "bufferInRam", "blkRangeOk", "chainLengthOk", "descIndexValid", "ringSlot",
                   "signalUsedBuffer", "deviceError", "initState", "{ s with q1 := q }"):
        assert needle in text, needle


def test_schema_file_is_in_sync_with_the_model() -> None:
    on_disk = json.loads((ROOT / cat.SCHEMA_PATH).read_text())
    assert on_disk == cat.json_schema()
    assert on_disk["$defs"]["Obligation"]["additionalProperties"] is False


def test_yaml_one_one_booleans_are_plain_strings() -> None:
    # `off` is a binder name, not the YAML 1.1 boolean false.
    ob = cat.load_catalogue(ROOT).by_id()["immut_queue_num"]
    assert list(ob.binders) == ["s", "off", "v"]


# ---- bad input -------------------------------------------------------------------------------


def _copy_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "MicroVMM", root / "MicroVMM")
    shutil.copytree(ROOT / "spec", root / "spec")
    shutil.copytree(ROOT / "tests/mutants", root / "tests/mutants")
    return root


def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    out = {}
    for rel in GENERATED:
        p = root / rel
        files = sorted(p.rglob("*")) if p.is_dir() else [p]
        for f in files:
            if f.is_file():
                out[f.relative_to(root).as_posix()] = (f.stat().st_mtime_ns, f.read_bytes())
    return out


def _gen(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MVTOOL_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "mvtool", "gen", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def _edit(root: Path, rel: str, old: str, new: str) -> None:
    p = root / rel
    text = p.read_text()
    assert old in text, old
    p.write_text(text.replace(old, new, 1))


BAD_CASES = {
    "malformed_yaml": (cat.CATALOGUE_PATH, "obligations:\n", "obligations:\n  - id: [unclosed\n",
                       "malformed YAML"),
    "unknown_field": (cat.CATALOGUE_PATH, "    group: Immutability\n",
                      "    group: Immutability\n    severity: high\n",
                      "obligation 'immut_queue_num', field 'severity': unknown field"),
    "duplicate_id": (cat.CATALOGUE_PATH, "  - id: immut_queue_desc", "  - id: immut_queue_num",
                     "duplicate obligation id 'immut_queue_num'"),
    "bad_kind": (cat.CATALOGUE_PATH, "    kind: frame", "    kind: lemma",
                 "field 'kind'"),
    "empty_statement": (cat.CATALOGUE_PATH,
                        "    statement: |-\n      refines s (deviceError s)",
                        "    statement: ''", ("obligation 'refines_device_error', field "
                        "'statement'")),
    "unknown_definition": (cat.CATALOGUE_PATH, "refines s (deviceError s)",
                           "refines s (deviceCrash s)",
                           "obligation 'refines_device_error', field 'statement'"),
    "ill_typed": (cat.CATALOGUE_PATH, "bufferInRam s addr len → within",
                  "s.queueSel = s.ramBase → bufferInRam s addr len → within",
                  "obligation 'buffer_check_means_inside_ram', field 'statement'"),
    "out_of_profile_model": ("MicroVMM/Model/Blk.lean", "namespace MicroVMM.Model",
                             ("namespace MicroVMM.Model\n\npartial def loop (x : BitVec 8) : "
                             "BitVec 8 := loop x"), "MicroVMM/Model/Blk.lean:"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_gives_one_error_line_and_writes_nothing(tmp_path: Path, case: str) -> None:
    root = _copy_repo(tmp_path)
    rel, old, new, expected = BAD_CASES[case]
    _edit(root, rel, old, new)
    before = _snapshot(root)
    r = _gen(root)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mvtool: error: "), r.stderr
    assert "Traceback" not in r.stderr
    assert expected in lines[0]
    assert _snapshot(root) == before


def test_missing_lean_file(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path)
    (root / "MicroVMM/Model/Blk.lean").unlink()
    before = _snapshot(root)
    r = _gen(root)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Blk" in lines[0] and "[P-IMPORT]" in lines[0], r.stderr
    assert _snapshot(root) == before


def test_ill_typed_error_names_the_widths(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path)
    _edit(root, cat.CATALOGUE_PATH, "bufferInRam s addr len → within",
          "s.queueSel = s.ramBase → bufferInRam s addr len → within")
    r = _gen(root)
    assert "32" in r.stderr and "64" in r.stderr, r.stderr


def test_pydantic_validation_in_process(tmp_path: Path) -> None:
    (tmp_path / "spec").mkdir()
    (tmp_path / cat.CATALOGUE_PATH).write_text(
        "version: 1\nobligations:\n  - id: BadId\n    title: t\n    group: G\n"
        "    kind: invariant\n    source: [x]\n    rationale: r\n    binders: {s: State}\n"
        "    statement: 'True'\n    backends: [smt]\n")
    with pytest.raises(MvtoolError, match=r"invariants.yaml:3: obligation 'BadId', field 'id'"):
        cat.load_catalogue(tmp_path)
