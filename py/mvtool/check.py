"""``mvtool check [PATH…] [--json]``: parse and type-check Lean files against the profile.

Without paths, every profile file of the repository is checked (``load_project``). Each error
is one line ``file:line:col: [RULE] message``; the exit status is 1 if any file fails.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mvtool.errors import MvtoolError
from mvtool.leanprofile import ProfileError, load_project
from mvtool.leanprofile.project import Project


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help=".lean files to check (default: every profile file of the repository)")
    parser.add_argument("--json", action="store_true", help="print a JSON report")


def _locate(path: str) -> tuple[Path, str]:
    """(project root, path relative to it) for a file given on the command line: the root is
    the directory that holds the file's ``MicroVMM/`` tree (imports resolve from there), or the
    file's own directory."""
    p = Path(path).resolve()
    if not p.is_file():
        raise MvtoolError(f"{path}: no such file")
    for parent in p.parents:
        rel = p.relative_to(parent).as_posix()
        if rel.startswith("MicroVMM/"):
            return parent, rel
    return p.parent, p.name


def _display(p: Path) -> str:
    try:
        return p.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return p.as_posix()


def check_paths(paths: list[str], root: Path) -> tuple[list[ProfileError], list[Project]]:
    """Check each path (or the whole repository when empty); errors de-duplicated."""
    errors: list[ProfileError] = []
    projects: list[Project] = []
    targets = [(root, None)] if not paths else [
        (r, [rel]) for r, rel in (_locate(p) for p in paths)]
    seen: set[str] = set()
    for proj_root, files in targets:
        try:
            projects.append(load_project(proj_root, files=files))
        except ProfileError as exc:
            if files is not None:
                exc.file = _display(proj_root / exc.file)
            if str(exc) not in seen:
                seen.add(str(exc))
                errors.append(exc)
    return errors, projects


def run(args: argparse.Namespace) -> int:
    from mvtool.paths import ROOT

    errors, projects = check_paths(args.paths, ROOT)
    files = sorted({f for p in projects for f in p.files})
    counts = {k: sum(len(getattr(p, k)) for p in projects)
              for k in ("structures", "enums", "defs", "theorems")}
    if args.json:
        print(json.dumps({"ok": not errors, "files": files, "declarations": counts,
                          "errors": [e.to_json() | {"text": str(e)} for e in errors]}, indent=2))
    else:
        for e in errors:
            print(e)
        if not errors:
            print(f"ok: {len(files)} file(s), " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return 1 if errors else 0
