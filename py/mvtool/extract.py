"""``mvtool extract``: generate Python from the Lean model (``spec/profile.md`` §Extraction).

Every ``def`` of ``MicroVMM/Model`` becomes a plain function (a zero-argument ``def`` a module
constant), every structure it uses a frozen, slotted dataclass (fields in declaration order),
every enumeration an ``IntEnum``; bit-vectors are ``int`` in ``[0, 2ⁿ)``, ``Bool`` is ``bool``.
Names are the Lean names with namespaces dropped; where two declarations share a short name the
namespace is prefixed (``Queue_init``). ``LEAN_NAMES`` maps every generated name to its Lean name.

The generated code is built for speed (it runs on every MMIO exit): no validation, direct
positional constructor calls for ``{ s with … }``, masks only where a result can overflow.

API::

    source = extract_model(project, "model")     # the module text (deterministic)
    module = load_generated(source, "twin")     # import it without writing a file
    write_extracted(project)                     # py/mvtool/_extracted/{__init__,model}.py
"""

from __future__ import annotations

import argparse
import json
import keyword
import sys
import types
from pathlib import Path

from mvtool.errors import MvtoolError
from mvtool.leanprofile import ir
from mvtool.leanprofile.project import Project, load_project

MODEL_DIR = "MicroVMM/Model/"
EXTRACTED_DIR = Path(__file__).resolve().parent / "_extracted"

INIT_TEXT = '''\
"""Python extracted from the Lean model by `python -m mvtool extract`. Do not edit.

`model` is MicroVMM/Model; other modules here are mutants extracted for demonstrations.
"""
'''


def _pyname(name: str) -> str:
    name = name.replace("'", "_").replace("!", "_").replace("?", "_")
    if keyword.iskeyword(name) or name in ("int", "bool", "dataclass", "IntEnum"):
        name += "_"
    return name


def _short_names(qualified: list[str], reserved: set[str]) -> dict[str, str]:
    """Shortest namespace suffix of each name that is unique (``A.B.f`` -> ``f`` or ``B_f``)."""
    k = dict.fromkeys(qualified, 1)
    while True:
        cand = {q: _pyname("_".join(q.split(".")[-k[q]:])) for q in qualified}
        groups: dict[str, list[str]] = {}
        for q, n in cand.items():
            groups.setdefault(n, []).append(q)
        clash = [q for n, qs in groups.items() if len(qs) > 1 or n in reserved for q in qs]
        clash = [q for q in clash if k[q] < len(q.split("."))]
        if not clash:
            return cand
        for q in clash:
            k[q] += 1


def _hexlit(v: int) -> str:
    return str(v) if v < 10 else hex(v)


def _mask(w: int) -> str:
    return hex((1 << w) - 1)


def _is_simple(code: str) -> bool:
    return code.replace("_", "a").replace(".", "a").isalnum() or code in ("True", "False")


class _Names:
    def __init__(self, project: Project, defs: list[ir.Def], types: list[str]):
        self.project = project
        self.types = _short_names(types, set())
        self.defs = _short_names([d.name for d in defs], set(self.types.values()))


class _FnGen:
    """Generates the body of one function."""

    def __init__(self, names: _Names):
        self.names = names
        self.lines: list[str] = []
        self.vars: dict[int, str] = {}
        self.used: set[str] = set(names.types.values()) | set(names.defs.values())
        self.tmp = 0

    def bind(self, name: str, uid: int) -> str:
        base = _pyname(name.lstrip("_") or "v")
        out, k = base, 2
        while out in self.used:
            out = f"{base}_{k}"
            k += 1
        self.used.add(out)
        self.vars[uid] = out
        return out

    def temp(self, code: str, pre: list[str]) -> str:
        if _is_simple(code):
            return code
        self.tmp += 1
        name = f"_t{self.tmp}"
        pre.append(f"{name} = {code}")
        return name

    def emit(self, ind: int, line: str) -> None:
        self.lines.append("    " * ind + line)

    def tname(self, ty: ir.Ty) -> str:
        if ty.kind == "bv":
            return "int"
        if ty.is_boolish:
            return "bool"
        return self.names.types[ty.name]

    # ---- statements (tail position) -----------------------------------------------------------
    def tail(self, e: ir.Expr, ind: int) -> None:
        if isinstance(e, ir.Let):
            assert e.value is not None and e.body is not None
            pre: list[str] = []
            v = self.expr(e.value, pre)
            for line in pre:
                self.emit(ind, line)
            self.emit(ind, f"{self.bind(e.name, e.uid)} = {v}")
            self.tail(e.body, ind)
            return
        if isinstance(e, ir.If):
            first = True
            cur: ir.Expr = e
            while isinstance(cur, ir.If):
                assert cur.cond is not None and cur.then is not None and cur.els is not None
                pre = []
                c = self.expr(cur.cond, pre)
                if pre and not first:
                    break
                for line in pre:
                    self.emit(ind, line)
                self.emit(ind, f"{'if' if first else 'elif'} {_unparen(c)}:")
                self.tail(cur.then, ind + 1)
                first = False
                cur = cur.els
            self.emit(ind, "else:")
            self.tail(cur, ind + 1)
            return
        if isinstance(e, ir.Match):
            assert e.scrut is not None
            pre = []
            s = self.temp(self.expr(e.scrut, pre), pre)
            for line in pre:
                self.emit(ind, line)
            for i, (idxs, arm) in enumerate(e.cases):
                if i == len(e.cases) - 1:
                    self.emit(ind, "else:")
                else:
                    self.emit(ind, f"{'if' if i == 0 else 'elif'} {self.case_test(s, e, idxs)}:")
                self.tail(arm, ind + 1)
            return
        pre = []
        v = self.expr(e, pre)
        for line in pre:
            self.emit(ind, line)
        self.emit(ind, f"return {_unparen(v)}")

    def case_test(self, s: str, m: ir.Match, idxs: list[int]) -> str:
        assert m.scrut is not None
        en = self.names.project.enums[m.scrut.ty.name]
        cls = self.names.types[en.name]
        ctors = [f"{cls}.{_pyname(en.ctors[i])}" for i in idxs]
        if len(ctors) == 1:
            return f"{s} == {ctors[0]}"
        return f"{s} in ({', '.join(ctors)})"

    # ---- expressions --------------------------------------------------------------------------
    def expr(self, e: ir.Expr, pre: list[str]) -> str:
        if isinstance(e, ir.Var):
            return self.vars[e.uid]
        if isinstance(e, ir.BVLit):
            return _hexlit(e.value)
        if isinstance(e, ir.BoolLit):
            return "True" if e.value else "False"
        if isinstance(e, ir.EnumLit):
            en = self.names.project.enums[e.ty.name]
            return f"{self.names.types[en.name]}.{_pyname(en.ctors[e.index])}"
        if isinstance(e, ir.Call):
            d = self.names.project.defs[e.fn]
            fn = self.names.defs[e.fn]
            if not d.params:
                return fn
            return f"{fn}({', '.join(_unparen(self.expr(a, pre)) for a in e.args)})"
        if isinstance(e, ir.Field):
            assert e.expr is not None
            return f"{self.expr(e.expr, pre)}.{_pyname(e.name)}"
        if isinstance(e, ir.MkStruct):
            cls = self.names.types[e.ty.name]
            return f"{cls}({', '.join(_unparen(self.expr(f, pre)) for f in e.fields)})"
        if isinstance(e, ir.Update):
            assert e.base is not None
            st = self.names.project.structures[e.ty.name]
            base = self.expr(e.base, pre)
            if not base.isidentifier() and len(st.fields) - len(e.updates) > 2:
                base = self.temp(base, pre)
            parts = []
            for i, (fname, _, _) in enumerate(st.fields):
                if i in e.updates:
                    parts.append(_unparen(self.expr(e.updates[i], pre)))
                else:
                    parts.append(f"{base}.{_pyname(fname)}")
            return f"{self.names.types[e.ty.name]}({', '.join(parts)})"
        if isinstance(e, ir.If):
            assert e.cond is not None and e.then is not None and e.els is not None
            c = self.expr(e.cond, pre)
            a = self.expr(e.then, pre)
            b = self.expr(e.els, pre)
            return f"({a} if {c} else {b})"
        if isinstance(e, ir.Match):
            assert e.scrut is not None
            s = self.temp(self.expr(e.scrut, pre), pre)
            out = self.expr(e.cases[-1][1], pre)
            for idxs, arm in reversed(e.cases[:-1]):
                out = f"({self.expr(arm, pre)} if {self.case_test(s, e, idxs)} else {out})"
            return out
        if isinstance(e, ir.Let):
            assert e.value is not None and e.body is not None
            v = self.expr(e.value, pre)
            pre.append(f"{self.bind(e.name, e.uid)} = {_unparen(v)}")
            return self.expr(e.body, pre)
        if isinstance(e, ir.Prim):
            return self.prim(e, pre)
        raise MvtoolError(f"cannot extract {type(e).__name__} (statements only)")

    def prim(self, e: ir.Prim, pre: list[str]) -> str:
        op = e.op
        a = [self.expr(x, pre) for x in e.args]
        w = e.args[0].ty.width if e.args and e.args[0].ty.kind == "bv" else 0
        m = _mask(w) if w else ""
        if op in ("bvadd", "bvsub", "bvmul"):
            sym = {"bvadd": "+", "bvsub": "-", "bvmul": "*"}[op]
            return f"(({a[0]} {sym} {a[1]}) & {m})"
        if op == "bvudiv":
            b = self.temp(a[1], pre)
            return f"(({a[0]} // {b}) if {b} else 0)"
        if op == "bvurem":
            x = self.temp(a[0], pre)
            b = self.temp(a[1], pre)
            return f"(({x} % {b}) if {b} else {x})"
        if op in ("bvand", "bvor", "bvxor"):
            sym = {"bvand": "&", "bvor": "|", "bvxor": "^"}[op]
            return f"({a[0]} {sym} {a[1]})"
        if op == "bvnot":
            return f"({a[0]} ^ {m})"
        if op == "bvneg":
            return f"((-{a[0]}) & {m})"
        if op == "bvshl":
            b = self.temp(a[1], pre)
            return f"((({a[0]} << {b}) & {m}) if {b} < {w} else 0)"
        if op == "bvlshr":
            return f"({a[0]} >> {a[1]})"
        if op == "bvshli":
            k = e.params[0]
            return "0" if k >= w else f"(({a[0]} << {k}) & {m})"
        if op == "bvlshri":
            k = e.params[0]
            return "0" if k >= w else f"({a[0]} >> {k})"
        if op == "concat":
            return f"(({a[0]} << {e.args[1].ty.width}) | {a[1]})"
        if op == "extract":
            start, length = e.params
            if start >= w:
                return "0"
            shifted = a[0] if start == 0 else f"({a[0]} >> {start})"
            return shifted if start + length >= w else f"({shifted} & {_mask(length)})"
        if op == "zext":
            n = e.params[0]
            return a[0] if n >= w else f"({a[0]} & {_mask(n)})"
        if op == "sext":
            n = e.params[0]
            if n <= w:
                return a[0] if n == w else f"({a[0]} & {_mask(n)})"
            sign = hex(1 << (w - 1))
            return f"((({a[0]} ^ {sign}) - {sign}) & {_mask(n)})"
        cmp = {"ult": "<", "ule": "<=", "ugt": ">", "uge": ">="}
        if op in cmp:
            return f"({a[0]} {cmp[op]} {a[1]})"
        if op in ("slt", "sle"):
            sign = hex(1 << (w - 1))
            sym = "<" if op == "slt" else "<="
            return f"(({a[0]} ^ {sign}) {sym} ({a[1]} ^ {sign}))"
        if op == "eq":
            return f"({a[0]} == {a[1]})"
        if op == "ne":
            return f"({a[0]} != {a[1]})"
        if op == "and":
            return f"({a[0]} and {a[1]})"
        if op == "or":
            return f"({a[0]} or {a[1]})"
        if op == "not":
            return f"(not {a[0]})"
        if op == "implies":
            return f"((not {a[0]}) or {a[1]})"
        if op == "iff":
            return f"({a[0]} == {a[1]})"
        raise MvtoolError(f"cannot extract primitive {op}")


def _unparen(code: str) -> str:
    if not (code.startswith("(") and code.endswith(")")):
        return code
    depth = 0
    for i, ch in enumerate(code):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(code) - 1:
            return code
    return code[1:-1]


def _docstring(doc: str, where: str, ind: int) -> list[str]:
    pad = "    " * ind
    body = doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').splitlines() if doc else []
    lines = [f'{pad}"""{body[0]}' if body else f'{pad}"""{where}']
    if body:
        lines += [f"{pad}{ln}" if ln else "" for ln in body[1:]]
        lines += ["", f"{pad}{where}"]
    lines[-1] += '"""'
    return lines


def _fast_init(cls: str, fields: list[str]) -> list[str]:
    """A replacement ``__init__`` that stores each field through its slot descriptor: the
    dataclass stays frozen (assignment raises), construction is ~4x cheaper than the generated
    frozen ``__init__`` (which goes through ``object.__setattr__`` per field)."""
    out = ["", ""]
    for f in fields:
        out.append(f"_{cls}_set_{f} = {cls}.{f}.__set__")
    out += ["", "", f"def _{cls}_init(self: {cls}, {', '.join(fields)}) -> None:"]
    out += [f"    _{cls}_set_{f}(self, {f})" for f in fields]
    out += ["", "", f"{cls}.__init__ = _{cls}_init  # type: ignore[method-assign]"]
    return out


def _types_used(project: Project, defs: list[ir.Def]) -> list[str]:
    used: set[str] = set()

    def add(ty: ir.Ty) -> None:
        if ty.kind in ("struct", "enum") and ty.name not in used:
            used.add(ty.name)
            if ty.kind == "struct":
                for _, fty, _ in project.structures[ty.name].fields:
                    add(fty)

    for st in project.structures.values():
        if st.file.startswith(MODEL_DIR):
            add(ir.Ty("struct", name=st.name))
    for en in project.enums.values():
        if en.file.startswith(MODEL_DIR):
            add(ir.Ty("enum", name=en.name))
    for d in defs:
        add(d.ret)
        for p in d.params:
            add(p.ty)
    order = list(project.enums) + list(project.structures)
    return [n for n in order if n in used]


def extract_model(project: Project, module_name: str = "model") -> str:
    """The Python source of the extracted model (deterministic for a given project)."""
    defs = [d for d in project.defs.values() if d.file.startswith(MODEL_DIR)]
    extra: list[ir.Def] = []
    seen = {d.name for d in defs}

    def need(e: ir.Expr) -> None:  # defs outside Model that Model defs call
        if isinstance(e, ir.Call) and e.fn not in seen:
            seen.add(e.fn)
            extra.append(project.defs[e.fn])
            need(project.defs[e.fn].body)
        for attr in ("args", "fields"):
            for x in getattr(e, attr, ()) or ():
                need(x)
        for attr in ("expr", "cond", "then", "els", "value", "body", "base", "scrut"):
            x = getattr(e, attr, None)
            if isinstance(x, ir.Expr):
                need(x)
        if isinstance(e, ir.Match):
            for _, a in e.cases:
                need(a)
        if isinstance(e, ir.Update):
            for u in e.updates.values():
                need(u)

    for d in list(defs):
        need(d.body)
    order = {name: i for i, name in enumerate(project.defs)}
    defs = sorted(defs + extra, key=lambda d: order[d.name])
    types = _types_used(project, defs)
    names = _Names(project, defs, types)
    files = sorted({d.file for d in defs} | {
        (project.structures.get(t) or project.enums[t]).file for t in types})
    out = [
        f"# Generated by `python -m mvtool extract` from {', '.join(files)}.",
        "# Do not edit: change the Lean model and extract again.",
        f'"""Extracted device model `{module_name}` (Lean: MicroVMM/Model).',
        "",
        "Bit-vectors are ints in [0, 2**n), structures frozen dataclasses, enumerations IntEnums.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from dataclasses import dataclass",
        "from enum import IntEnum",
        "",
    ]
    lean_names: dict[str, str] = {}
    for t in types:
        cls = names.types[t]
        lean_names[cls] = t
        out.append("")
        if t in project.enums:
            en = project.enums[t]
            out.append(f"class {cls}(IntEnum):")
            out += _docstring(en.doc, f"Lean: {en.file}:{en.line} ({en.name})", 1)
            out.append("")
            for i, c in enumerate(en.ctors):
                out.append(f"    {_pyname(c)} = {i}")
        else:
            st = project.structures[t]
            out.append("@dataclass(frozen=True, slots=True)")
            out.append(f"class {cls}:")
            out += _docstring(st.doc, f"Lean: {st.file}:{st.line} ({st.name})", 1)
            out.append("")
            for fname, fty, fdoc in st.fields:
                tn = "int" if fty.kind == "bv" else "bool" if fty.is_boolish \
                    else names.types[fty.name]
                comment = f"  # {fdoc.splitlines()[0]}" if fdoc else ""
                if fty.kind == "bv":
                    comment = f"  # BitVec {fty.width}" + (f": {fdoc.splitlines()[0]}"
                                                           if fdoc else "")
                out.append(f"    {_pyname(fname)}: {tn}{comment}"[:200])
            out += _fast_init(cls, [_pyname(f) for f, _, _ in st.fields])
        out.append("")
    constants: list[tuple[str, str]] = []
    for d in defs:
        fn = names.defs[d.name]
        lean_names[fn] = d.name
        g = _FnGen(names)
        params = []
        for p in d.params:
            params.append(f"{g.bind(p.name, p.uid)}: {g.tname(p.ty)}")
        where = f"Lean: {d.file}:{d.line} ({d.name})"
        out.append("")
        if d.params:
            out.append(f"def {fn}({', '.join(params)}) -> {g.tname(d.ret)}:")
        else:
            out.append(f"def _mk_{fn}() -> {g.tname(d.ret)}:")
            constants.append((fn, where))
        out += _docstring(d.doc, where, 1)
        g.tail(d.body, 1)
        out += g.lines
        out.append("")
    if constants:
        out.append("")
        out.append("# Zero-argument definitions, evaluated once (values are immutable).")
        for fn, _ in constants:
            out.append(f"{fn} = _mk_{fn}()")
        out.append("")
    out.append("")
    out.append("#: generated name -> Lean declaration")
    out.append("LEAN_NAMES: dict[str, str] = {")
    for k in sorted(lean_names):
        out.append(f"    {k!r}: {lean_names[k]!r},")
    out.append("}")
    return "\n".join(out) + "\n"


def write_extracted(project: Project, module_name: str = "model",
                    directory: Path | None = None) -> list[Path]:
    """Write ``__init__.py`` and ``<module_name>.py`` (default directory: ``EXTRACTED_DIR``);
    returns the paths written."""
    directory = directory or EXTRACTED_DIR
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "__init__.py", directory / f"{module_name}.py"]
    paths[0].write_text(INIT_TEXT, encoding="utf-8")
    paths[1].write_text(extract_model(project, module_name), encoding="utf-8")
    return paths


def load_generated(source: str, module_name: str) -> types.ModuleType:
    """Import generated model source as module ``module_name`` without writing it to disk
    (registered in ``sys.modules`` so dataclasses resolve their annotations)."""
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module
    exec(compile(source, f"<extracted {module_name}>", "exec"), module.__dict__)  # noqa: S102
    return module


def mutant_overrides(name: str, root: Path | None = None) -> dict[str, str]:
    """Source overrides of the mutant ``name`` of ``tests/mutants/mutants.yaml``."""
    from mvtool.catalogue import load_mutants
    from mvtool.paths import ROOT

    root = root or ROOT
    mutant = load_mutants(root).by_id().get(name)
    if mutant is None:
        raise MvtoolError(f"no mutant named {name!r} in tests/mutants/mutants.yaml")
    return dict(mutant.apply(root))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="exit non-zero if the committed files differ from a fresh extraction")
    parser.add_argument("--mutant", metavar="NAME",
                        help="extract the named mutant of the model to _extracted/NAME.py")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    overrides = mutant_overrides(args.mutant) if args.mutant else None
    project = load_project(overrides=overrides)
    module = args.mutant or "model"
    if not module.isidentifier():
        raise MvtoolError(f"mutant name {module!r} is not a Python module name")
    expected = {EXTRACTED_DIR / "__init__.py": INIT_TEXT,
                EXTRACTED_DIR / f"{module}.py": extract_model(project, module)}
    if args.check:
        stale = [p for p, text in expected.items()
                 if not p.is_file() or p.read_text(encoding="utf-8") != text]
        if stale:
            raise MvtoolError("extracted code is out of date: " + ", ".join(
                str(p.relative_to(EXTRACTED_DIR.parents[2])) for p in stale)
                + " (run `python -m mvtool extract`)")
        print(json.dumps({"up_to_date": True}) if args.json else "extracted code is up to date")
        return 0
    written = [str(p.relative_to(EXTRACTED_DIR.parents[2]))
               for p in write_extracted(project, module)]
    if args.json:
        print(json.dumps({"module": module, "written": written}))
    else:
        for rel in written:
            print(f"wrote {rel}")
    return 0
