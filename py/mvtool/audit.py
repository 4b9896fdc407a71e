"""``mvtool axioms``: the trusted base, listed.

Scans every Lean file of the project for what Lean's kernel does not check by itself — `axiom`
declarations, `@[extern]` bindings to C, `sorry`/`admit`, `native_decide`, `unsafe`,
`implemented_by`, and `bv_decide` (directly or through the project tactic `mvvm_decide`), which
trusts compiled code and, since Lean 4.29, adds one `….\\_native.bv_decide.ax_…` axiom per use.
Every FFI axiom is joined with `spec/ffi_contract.yaml`, which says how the C side discharges it;
the command checks that each axiom has an entry, that each named piece of evidence exists and
that each `@[extern]` symbol is defined in the shim's C sources.

It is a text scan (comments and strings removed first), not Lean's `#print axioms`: where a Lean
toolchain exists, `#print axioms` is the authority; here it is **not checked**.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from mvtool import paths
from mvtool.errors import MvtoolError

#: Tactics and keywords whose soundness rests on more than the kernel.
TRUST_MARKERS = {
    "sorry": "proof hole: the statement is assumed",
    "admit": "proof hole: the statement is assumed",
    "native_decide": "trusts the compiler and the compiled decision procedure",
    "unsafe": "escapes the kernel's type discipline",
    "implemented_by": "the compiled code differs from the definition the kernel sees",
    "bv_decide": "trusts the compiled LRAT checker; adds a `_native.bv_decide.ax_…` axiom",
}
#: The project tactic expands to `bv_decide` (MicroVMM/Tactic.lean).
PROJECT_TACTIC = "mvvm_decide"
#: Markers that make the trusted base unacceptable rather than merely listed.
FORBIDDEN = {"sorry", "admit"}


@dataclass
class Finding:
    """One trusted-base item at a source location."""

    kind: str
    name: str
    file: str
    line: int
    note: str = ""
    evidence: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def strip_comments_and_strings(text: str, *, keep_strings: bool = False) -> str:
    """Blank out Lean comments (nested `/- -/`, `--`) and, unless ``keep_strings``, string
    literals, keeping line breaks so that line numbers stay right."""
    out: list[str] = []
    i, depth, n = 0, 0, len(text)
    while i < n:
        two = text[i:i + 2]
        if depth > 0:
            if two == "/-":
                depth += 1
                out.append("  ")
                i += 2
            elif two == "-/":
                depth -= 1
                out.append("  ")
                i += 2
            else:
                out.append("\n" if text[i] == "\n" else " ")
                i += 1
        elif two == "/-":
            depth = 1
            out.append("  ")
            i += 2
        elif two == "--":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text[i] == '"' and not keep_strings:
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            segment = text[i:j + 1]
            out.append('"' + "".join("\n" if c == "\n" else " " for c in segment[1:-1]) + '"')
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


_AXIOM = re.compile(r"^\s*(?:private\s+|protected\s+)?axiom\s+([^\s(:]+)", re.MULTILINE)
_EXTERN = re.compile(r'@\[\s*extern\s+"([^"]+)"\s*\]\s*(?:opaque|def|constant)\s+([^\s(:]+)')
_EXTERN_BARE = re.compile(r"@\[\s*extern\b")
_NAMESPACE = re.compile(r"^\s*namespace\s+(\S+)", re.MULTILINE)
_THEOREM = re.compile(r"^\s*theorem\s+([^\s(:]+)", re.MULTILINE)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _namespace_at(clean: str, pos: int) -> str:
    """The namespace in force at `pos` (files here use one `namespace … end` block each)."""
    names = [m.group(1) for m in _NAMESPACE.finditer(clean, 0, pos)]
    return names[-1] if names else ""


def _c_definitions(shim_dir: Path) -> set[str]:
    defined: set[str] = set()
    pattern = re.compile(r"^[A-Za-z_][\w \t\*]*?\b([A-Za-z_]\w*)\s*\([^;{]*\)\s*\{", re.MULTILINE)
    for c_file in sorted(shim_dir.glob("*.c")):
        defined.update(m.group(1) for m in pattern.finditer(c_file.read_text(errors="replace")))
    return defined


def _evidence_exists(root: Path, node_id: str) -> bool:
    file_part, _, func = node_id.partition("::")
    path = root / file_part
    if not path.is_file():
        return False
    if not func:
        return True
    return re.search(rf"^\s*def {re.escape(func)}\s*\(", path.read_text(), re.MULTILINE) is not None


def audit(root: Path | None = None) -> dict:
    """Scan the Lean sources under ``root`` and return the trusted-base report as a dict."""
    root = root or paths.ROOT
    lean_root = root / "MicroVMM"
    if not lean_root.is_dir():
        raise MvtoolError(f"no Lean sources: {lean_root} does not exist")
    contract_path = root / "spec" / "ffi_contract.yaml"
    try:
        contract = yaml.safe_load(contract_path.read_text()) or {}
    except FileNotFoundError:
        raise MvtoolError(f"{contract_path}: missing (the FFI contract table)") from None
    except yaml.YAMLError as exc:
        raise MvtoolError(f"{contract_path}: not valid YAML: {exc}".splitlines()[0]) from None
    contract_axioms: dict = contract.get("axioms") or {}
    c_defined = _c_definitions(root / "shim")

    findings: list[Finding] = []
    bv_decide_theorems: list[Finding] = []
    files = sorted(lean_root.rglob("*.lean")) + [root / "MicroVMM.lean"]
    for path in files:
        if not path.is_file():
            continue
        rel = str(path.relative_to(root))
        text = path.read_text()
        clean = strip_comments_and_strings(text)
        for m in _AXIOM.finditer(clean):
            ns = _namespace_at(clean, m.start())
            name = f"{ns}.{m.group(1)}" if ns else m.group(1)
            f = Finding("axiom", name, rel, _line_of(clean, m.start()))
            entry = contract_axioms.get(name)
            if entry is None:
                f.problems.append("no entry in spec/ffi_contract.yaml: nothing discharges it")
            else:
                f.note = "discharged by " + ", ".join(entry.get("methods", []))
                f.evidence = list(entry.get("evidence", []))
                for ev in f.evidence:
                    if not _evidence_exists(root, ev):
                        f.problems.append(f"evidence {ev} does not exist")
            findings.append(f)
        externs_seen = 0
        with_strings = strip_comments_and_strings(text, keep_strings=True)
        for m in _EXTERN.finditer(with_strings):
            externs_seen += 1
            symbol, decl = m.group(1), m.group(2)
            ns = _namespace_at(clean, m.start())
            f = Finding("extern", f"{ns}.{decl}" if ns else decl, rel,
                        _line_of(clean, m.start()), note=f"C symbol {symbol}")
            if symbol not in c_defined:
                f.problems.append(f"C symbol {symbol} is not defined in shim/*.c")
            findings.append(f)
        if len(_EXTERN_BARE.findall(with_strings)) != externs_seen:
            findings.append(Finding("extern", "?", rel, 1,
                                    problems=["an @[extern] this scan cannot read"]))
        for marker, note in TRUST_MARKERS.items():
            for m in re.finditer(rf"(?<![\w.]){re.escape(marker)}(?![\w])", clean):
                if rel == "MicroVMM/Tactic.lean" and marker == "bv_decide":
                    continue  # the macro definition itself; its uses are counted below
                f = Finding(marker, marker, rel, _line_of(clean, m.start()), note=note)
                if marker in FORBIDDEN:
                    f.problems.append("proof hole")
                findings.append(f)
        for m in _THEOREM.finditer(clean):
            end = _THEOREM.search(clean, m.end())
            body = clean[m.end(): end.start() if end else len(clean)]
            if PROJECT_TACTIC in body or "bv_decide" in body:
                ns = _namespace_at(clean, m.start())
                bv_decide_theorems.append(Finding(
                    "bv_decide-proof", f"{ns}.{m.group(1)}" if ns else m.group(1), rel,
                    _line_of(clean, m.start()),
                    note="adds `<theorem>._native.bv_decide.ax_…` under Lean ≥ 4.29"))

    declared = {f.name for f in findings if f.kind == "axiom"}
    for name in sorted(set(contract_axioms) - declared):
        findings.append(Finding("contract", name, "spec/ffi_contract.yaml", 1,
                                problems=["entry names an axiom that is not declared"]))

    problems = [f for f in findings if f.problems]
    return {
        "lean_checked": False,
        "note": "text scan; `#print axioms` needs a Lean toolchain and was not run here",
        "axioms": [asdict(f) for f in findings if f.kind == "axiom"],
        "externs": [asdict(f) for f in findings if f.kind == "extern"],
        "markers": [asdict(f) for f in findings if f.kind in TRUST_MARKERS],
        "bv_decide_theorems": [asdict(f) for f in bv_decide_theorems],
        "contract_problems": [asdict(f) for f in findings if f.kind == "contract"],
        "ok": not problems,
        "problems": [f"{f.file}:{f.line}: {f.name}: {p}" for f in problems for p in f.problems],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    report = audit()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if report["ok"] else 1
    print("Trusted base of MicroVMM (text scan of the Lean sources; `#print axioms` not checked "
          "here: no Lean toolchain)")
    print(f"\nAxioms ({len(report['axioms'])}):")
    for a in report["axioms"]:
        print(f"  {a['name']}  [{a['file']}:{a['line']}]  {a['note']}")
        for ev in a["evidence"]:
            print(f"      evidence: {ev}")
    print(f"\n@[extern] bindings ({len(report['externs'])}):")
    for e in report["externs"]:
        print(f"  {e['name']}  -> {e['note']}  [{e['file']}:{e['line']}]")
    counts: dict[str, int] = {}
    for m in report["markers"]:
        counts[m["kind"]] = counts.get(m["kind"], 0) + 1
    print("\nProof-trust markers:")
    for marker, meaning in TRUST_MARKERS.items():
        print(f"  {marker:<15} {counts.get(marker, 0):>3}   {meaning}")
    n = len(report["bv_decide_theorems"])
    print(f"\nTheorems whose proof is `by {PROJECT_TACTIC}` (bv_decide; not checked here): {n} — "
          "each adds its own `_native.bv_decide.ax_…` axiom under Lean ≥ 4.29 (names: "
          "`#print axioms`, not run here)")
    if report["problems"]:
        print("\nProblems:")
        for p in report["problems"]:
            print(f"  {p}")
        return 1
    print("\nNo problems: every axiom has a discharge entry with existing evidence; every extern "
          "symbol is defined in the shim; no sorry/admit.")
    return 0
