"""``mvtool gen``: render ``MicroVMM/Obligations/*.lean`` from the invariant catalogue.

Pipeline: load and validate ``spec/invariants.yaml`` (pydantic), load the Lean model with the
profile front end, type-check every statement, render every file in memory (jinja2, one file per
group, sorted, no timestamps), and only then write — each file through a temporary file and an
atomic rename, removing generated files that no longer belong. If anything fails before the
writing starts, nothing on disk changes. ``--check`` writes nothing and fails if the files on disk
differ from what would be generated (CI runs it).

The JSON schema of the catalogue (``spec/invariants.schema.json``) is generated here too.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from mvtool import catalogue as cat
from mvtool.errors import MvtoolError

#: directory of the generated obligation modules and the index module importing them all
OBLIGATIONS_DIR = "MicroVMM/Obligations"
INDEX_PATH = "MicroVMM/Obligations.lean"
#: namespaces a statement may use (resolved in this order after the obligations namespace)
STATEMENT_OPENS = ["MicroVMM.Model", "MicroVMM.Spec", "MicroVMM.Refinement"]
#: every generated module imports the project tactic
TACTIC_MODULE = "MicroVMM.Tactic"

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("mvtool", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


@dataclass
class Generated:
    """The result of rendering: the catalogue, the model project it was checked against, and the
    generated files (repository-relative path -> text)."""

    catalogue: cat.Catalogue
    project: Any
    files: dict[str, str] = field(default_factory=dict)

    def obligation_files(self) -> dict[str, str]:
        """Only the generated Lean modules under ``MicroVMM/Obligations/``."""
        return {k: v for k, v in self.files.items() if k.startswith(OBLIGATIONS_DIR + "/")}


def model_files(root: Path) -> list[str]:
    """The profile files of the model, abstract spec and refinement (not the obligations)."""
    from mvtool.leanprofile.project import discover

    return [f for f in discover(root, {}) if not f.startswith(OBLIGATIONS_DIR + "/")]


def load_model(root: Path, overrides: dict[str, str] | None = None) -> Any:
    """Load and type-check the model files with the profile front end."""
    from mvtool.leanprofile import ProfileError, load_project

    try:
        return load_project(root, overrides=overrides or {}, files=model_files(root))
    except ProfileError as exc:
        raise MvtoolError(str(exc)) from None


def module_of(rel: str) -> str:
    """``MicroVMM/Model/State.lean`` -> ``MicroVMM.Model.State``."""
    return rel[: -len(".lean")].replace("/", ".")


def _file_namespace(text: str) -> str | None:
    m = re.search(r"^namespace\s+(\S+)", text, re.MULTILINE)
    return m.group(1) if m else None


def _used_files(project: Any, th: Any) -> set[str]:
    """Files declaring the definitions and types a type-checked statement uses."""
    from mvtool.leanprofile import ir

    out: set[str] = set()

    def ty(t: ir.Ty) -> None:
        if t.kind == "struct" and t.name in project.structures:
            out.add(project.structures[t.name].file)
        elif t.kind == "enum" and t.name in project.enums:
            out.add(project.enums[t.name].file)

    def walk(e: Any) -> None:
        if isinstance(e, ir.Expr):
            ty(e.ty)
            if isinstance(e, ir.Call) and e.fn in project.defs:
                out.add(project.defs[e.fn].file)
            if isinstance(e, ir.Forall):
                for p in e.params:
                    ty(p.ty)
        if isinstance(e, ir.Match):
            walk(e.scrut)
            for _, arm in e.cases:
                walk(arm)
            return
        for name in ("expr", "cond", "then", "els", "value", "body", "base", "scrut"):
            x = getattr(e, name, None)
            if isinstance(x, ir.Expr):
                walk(x)
        for name in ("args", "fields"):
            for x in getattr(e, name, None) or ():
                walk(x)
        if isinstance(e, ir.Update):
            for x in e.updates.values():
                walk(x)

    for p in th.binders:
        ty(p.ty)
    walk(th.statement)
    return out


def _minimal_imports(project: Any, files: set[str]) -> list[str]:
    """Drop files already imported (transitively) by another file of the set."""
    closure: dict[str, set[str]] = {}

    def deps(f: str) -> set[str]:
        if f not in closure:
            acc: set[str] = set()
            for d in project.file_imports.get(f, []):
                acc |= {d} | deps(d)
            closure[f] = acc
        return closure[f]

    keep = {f for f in files if not any(f in deps(g) for g in files if g != f)}
    return sorted(keep)


def _wrap(text: str, width: int = 96) -> list[str]:
    return textwrap.wrap(" ".join(text.split()), width=width) or [""]


def render(root: Path) -> Generated:
    """Validate the catalogue, type-check it against the model and render every generated file
    in memory. Raises :class:`MvtoolError` (one line) on the first problem; writes nothing."""
    catalogue = cat.load_catalogue(root)
    project = load_model(root)
    from mvtool.leanprofile import ProfileError

    # Type-check every statement (errors name the entry and the field) and remember which
    # model files each one needs.
    used: dict[str, set[str]] = {}
    for ob in catalogue.obligations:
        try:
            th = project.typecheck_statement(ob.binder_list, ob.statement,
                                             namespace=cat.OBLIGATIONS_NAMESPACE,
                                             opens=STATEMENT_OPENS, file=f"{ob.id}.statement")
        except ProfileError as exc:
            binder = exc.file.split(":binder ", 1)[1] if ":binder " in exc.file else None
            fld = "binders" if binder else "statement"
            line = cat.catalogue_line(root, ob.id, fld)
            where = f"{cat.CATALOGUE_PATH}:{line}" if line else cat.CATALOGUE_PATH
            detail = f" ({binder})" if binder else f" at {exc.line}:{exc.col}"
            raise MvtoolError(f"{where}: obligation {ob.id!r}, field '{fld}'{detail}: "
                              f"[{exc.rule}] {exc.message}") from None
        used[ob.id] = _used_files(project, th)

    namespaces = {f: _file_namespace(project.texts[f]) for f in project.files}
    template = _TEMPLATES.get_template("obligations.lean.j2")
    files: dict[str, str] = {}
    modules: list[str] = []
    for group, obs in catalogue.groups().items():
        needed: set[str] = set().union(*(used[ob.id] for ob in obs))
        imports = [TACTIC_MODULE] + [module_of(f) for f in _minimal_imports(project, needed)]
        opens = [ns for ns in STATEMENT_OPENS
                 if any(namespaces.get(f) == ns for f in needed)]
        rendered_obs = [{
            "id": ob.id,
            "title": ob.title,
            "kind": ob.kind,
            "rationale_lines": _wrap(ob.rationale),
            "source_lines": _wrap("; ".join(ob.source)),
            "binders": " ".join(f"({n} : {t})" for n, t in ob.binder_list),
            "statement_lines": [ln.rstrip() for ln in ob.statement.strip().splitlines()
                                if ln.strip()],
        } for ob in obs]
        text = template.render(group=group, imports=imports, opens=opens,
                               namespace=cat.OBLIGATIONS_NAMESPACE, obligations=rendered_obs)
        rel = f"{OBLIGATIONS_DIR}/{group}.lean"
        files[rel] = text
        modules.append(module_of(rel))
    files[INDEX_PATH] = _TEMPLATES.get_template("obligations_index.lean.j2").render(
        modules=modules, total=len(catalogue.obligations))
    files[cat.SCHEMA_PATH] = json.dumps(cat.json_schema(), indent=2, ensure_ascii=False) + "\n"
    return Generated(catalogue, project, files)


def stale_files(root: Path, generated: Generated) -> list[str]:
    """Generated modules on disk that the catalogue no longer produces."""
    d = root / OBLIGATIONS_DIR
    if not d.is_dir():
        return []
    return sorted(p.relative_to(root).as_posix() for p in d.glob("*.lean")
                  if p.relative_to(root).as_posix() not in generated.files)


def differences(root: Path, generated: Generated) -> list[str]:
    """Paths whose content on disk differs from the rendering (missing, changed or stale)."""
    out = []
    for rel, text in sorted(generated.files.items()):
        p = root / rel
        if not p.is_file() or p.read_text(encoding="utf-8") != text:
            out.append(rel)
    return out + stale_files(root, generated)


def write(root: Path, generated: Generated) -> tuple[list[str], list[str]]:
    """Write the changed files atomically and remove stale ones; returns (written, removed).

    All temporary files are written first; only when every one exists are they renamed into
    place, so a failure while writing leaves the previous files untouched."""
    changed = [rel for rel in differences(root, generated) if rel in generated.files]
    removed = stale_files(root, generated)
    temps: list[tuple[str, Path]] = []
    try:
        for rel in changed:
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                       dir=target.parent)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(generated.files[rel])
            temps.append((rel, Path(tmp)))
    except OSError as exc:
        for _, tmp in temps:
            tmp.unlink(missing_ok=True)
        raise MvtoolError(f"cannot write generated files: {exc}") from None
    for rel, tmp in temps:
        os.replace(tmp, root / rel)
    for rel in removed:
        (root / rel).unlink()
    return changed, removed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``mvtool gen``."""
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit non-zero if the generated files are out of date")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    """Entry point of ``mvtool gen``."""
    from mvtool.paths import ROOT

    generated = render(ROOT)
    n_obligations = len(generated.catalogue.obligations)
    if args.check:
        diff = differences(ROOT, generated)
        if diff:
            raise MvtoolError(f"generated files are out of date: {', '.join(diff)} "
                              "(run `mvtool gen`)", exit_code=1)
        if args.json:
            print(json.dumps({"up_to_date": True, "files": len(generated.files),
                              "obligations": n_obligations}))
        else:
            print(f"generated files are up to date ({len(generated.files)} files, "
                  f"{n_obligations} obligations)")
        return 0
    written, removed = write(ROOT, generated)
    if args.json:
        print(json.dumps({"obligations": n_obligations,
                          "written": sorted(str(p) for p in written),
                          "removed": sorted(str(p) for p in removed),
                          "unchanged": len(generated.files) - len(written)}))
    else:
        print(f"{n_obligations} obligations in "
              f"{len(generated.obligation_files())} modules: {len(written)} file(s) written, "
              f"{len(removed)} removed, {len(generated.files) - len(written)} unchanged")
    return 0
