"""Differential test: for every definition of MicroVMM/Model, the extracted Python and the SMT
translation (``evaluate``) agree on random inputs (seeded; corner values over-represented)."""

from __future__ import annotations

import dataclasses
import enum
import random
from typing import Any

import pytest
from mvtool.backends.smt import evaluate
from mvtool.extract import extract_model, load_generated
from mvtool.leanprofile import ir, load_project
from mvtool.leanprofile.project import Project

SAMPLES = 25
SEED = 20261121


def random_value(project: Project, module: Any, names: dict[str, str], ty: ir.Ty,
                 rng: random.Random) -> Any:
    if ty.kind == "bv":
        w = ty.width
        top = (1 << w) - 1
        pick = rng.random()
        if pick < 0.3:
            return rng.choice([0, 1, 2, 3, 4, 8, 15, 16, 256, top, top - 1, 1 << (w - 1)]) & top
        if pick < 0.5 and w >= 8:
            return rng.randrange(0, 0x100, 4)  # register offsets, small sizes
        if pick < 0.6:
            return rng.getrandbits(min(w, 12))
        return rng.getrandbits(w)
    if ty.is_boolish:
        return rng.random() < 0.5
    cls = getattr(module, names[ty.name])
    if ty.kind == "enum":
        return rng.choice(list(cls))
    st = project.structures[ty.name]
    return cls(*[random_value(project, module, names, fty, rng) for _, fty, _ in st.fields])


def plain(v: Any) -> Any:
    """An extracted value in the form ``evaluate`` returns."""
    if dataclasses.is_dataclass(v):
        return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, enum.Enum):
        return v.name
    return v


@pytest.fixture(scope="module")
def extracted():  # type: ignore[no-untyped-def]
    import sys

    project = load_project()
    module = load_generated(extract_model(project, "differential_model"), "differential_model")
    names = {lean: py for py, lean in module.LEAN_NAMES.items()}
    yield project, module, names
    del sys.modules["differential_model"]


def test_every_model_def_agrees_with_smt(extracted) -> None:  # type: ignore[no-untyped-def]
    project, module, names = extracted
    rng = random.Random(SEED)
    defs = [d for d in project.defs.values() if d.file.startswith("MicroVMM/Model/")]
    assert len(defs) > 10
    checked = 0
    for d in defs:
        py = getattr(module, names[d.name])
        for _ in range(SAMPLES if d.params else 1):
            args = [random_value(project, module, names, p.ty, rng) for p in d.params]
            got = plain(py(*args) if d.params else py)
            want = evaluate(project, d.name, args)
            assert got == want, f"{d.name}{tuple(plain(a) for a in args)}: Python {got}, SMT {want}"
            checked += 1
    assert checked >= len(defs)


def test_committed_extraction_is_current(extracted) -> None:  # type: ignore[no-untyped-def]
    """py/mvtool/_extracted/model.py is what `mvtool extract` produces from the current model."""
    from mvtool.extract import EXTRACTED_DIR

    project, _, _ = extracted
    committed = (EXTRACTED_DIR / "model.py").read_text(encoding="utf-8")
    assert committed == extract_model(project, "model"), \
        "run `python -m mvtool extract` and commit py/mvtool/_extracted/model.py"
