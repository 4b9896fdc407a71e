"""Loading a project: find the profile files, order them by imports, type-check each."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mvtool.leanprofile import ir
from mvtool.leanprofile import syntax as S
from mvtool.leanprofile.errors import ProfileError
from mvtool.leanprofile.parser import parse_expression, parse_module, parse_type_text
from mvtool.leanprofile.typecheck import (
    CtorRef,
    Decl,
    Elaborator,
    Env,
    FieldRef,
    Local,
    TheoremRef,
    fresh_uid,
)

#: directories (under the repository root) whose .lean files are in the profile
PROFILE_DIRS = ("MicroVMM/Spec", "MicroVMM/Model", "MicroVMM/Refinement", "MicroVMM/Obligations")
#: files that may be imported but are not parsed (tactic macros, FFI declarations)
OPAQUE_PREFIXES = ("MicroVMM/Tactic.lean", "MicroVMM/Attr.lean", "MicroVMM/FFI/")
#: imports outside the repository that the profile allows (and the front end ignores)
ALLOWED_EXTERNAL_IMPORTS = {"Std.Tactic.BVDecide"}


@dataclass
class Project:
    """The type-checked declarations of a set of profile files (see the package docstring)."""

    root: Path
    files: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    structures: dict[str, ir.Structure] = field(default_factory=dict)
    enums: dict[str, ir.Enum] = field(default_factory=dict)
    defs: dict[str, ir.Def] = field(default_factory=dict)
    theorems: dict[str, ir.Theorem] = field(default_factory=dict)
    env: Env = field(default_factory=Env)
    file_imports: dict[str, list[str]] = field(default_factory=dict)

    def resolve(self, name: str, namespace: str = "", opens: list[str] | None = None
                ) -> tuple[str, Decl] | None:
        """Resolve ``name`` as Lean would inside ``namespace`` with ``opens``; returns the
        qualified name and the declaration, or None."""
        try:
            return self.env.resolve(name, namespace, opens or [], None)
        except KeyError as exc:
            raise ProfileError(str(exc.args[0]), "P-NAME", "<name>", 1, 1) from None

    def typecheck_statement(self, binders: list[tuple[str, str]], statement: str, *,
                            namespace: str = "", opens: list[str] | None = None,
                            file: str = "<statement>") -> ir.Theorem:
        """Parse and type-check a theorem statement given as source text.

        ``binders`` are (name, type source) pairs. Raises :class:`ProfileError` (location
        relative to ``statement``; binder types are reported at line 1 of ``file``+``:binder``).
        Returns the statement as an unnamed :class:`ir.Theorem` (not added to the project)."""
        el = Elaborator(self.env, file, namespace, list(opens or []), None, statement=True)
        params = []
        for name, tytext in binders:
            tyx = parse_type_text(tytext, f"{file}:binder {name}")
            el.file = f"{file}:binder {name}"
            ty = el.elab_type(tyx)
            el.file = file
            p = ir.Param(name, fresh_uid(), ty)
            params.append(p)
            el.locals[name] = Local(p.uid, ty)
        expr = parse_expression(statement, file)
        stmt = el.elab(expr, ir.PROP)
        return ir.Theorem("", file, 1, params, stmt, source=statement)


def module_path(module: str) -> str:
    return module.replace(".", "/") + ".lean"


def discover(root: Path, overrides: dict[str, str]) -> list[str]:
    found: set[str] = set()
    for d in PROFILE_DIRS:
        base = root / d
        if base.is_dir():
            for p in base.rglob("*.lean"):
                found.add(p.relative_to(root).as_posix())
    for rel in overrides:
        if any(rel.startswith(d + "/") for d in PROFILE_DIRS) and rel.endswith(".lean"):
            found.add(rel)
    return sorted(found)


def read_source(root: Path, rel: str, overrides: dict[str, str]) -> str | None:
    if rel in overrides:
        return overrides[rel]
    p = root / rel
    if not p.is_file():
        return None
    return p.read_text(encoding="utf-8")


def load_project(root: Path | None = None, *, overrides: dict[str, str] | None = None,
                 files: list[str] | None = None) -> Project:
    """Parse and type-check the profile files of the repository at ``root``.

    ``overrides`` maps repository-relative paths to replacement text (never written to disk).
    ``files`` restricts loading to these repository-relative paths (and what they import)."""
    from mvtool.paths import ROOT

    root = Path(root) if root is not None else ROOT
    overrides = dict(overrides or {})
    project = Project(root)
    wanted = files if files is not None else discover(root, overrides)
    modules: dict[str, S.Module] = {}
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(rel: str, via: S.ImportCmd | None, via_file: str) -> None:
        if state.get(rel) == 2:
            return
        if state.get(rel) == 1:
            assert via is not None
            raise ProfileError(f"import cycle through `{via.module}`", "P-IMPORT", via_file,
                               via.line, via.col)
        text = read_source(root, rel, overrides)
        if text is None:
            if via is None:
                raise ProfileError("file not found", "P-IMPORT", rel, 1, 1)
            raise ProfileError(f"import `{via.module}`: no file {rel}", "P-IMPORT", via_file,
                               via.line, via.col)
        state[rel] = 1
        mod = parse_module(text, rel)
        modules[rel] = mod
        project.texts[rel] = text
        deps = []
        for imp in mod.imports:
            if imp.module in ALLOWED_EXTERNAL_IMPORTS:
                continue
            if not imp.module.startswith("MicroVMM."):
                raise ProfileError(f"import `{imp.module}` is outside the profile (Lean core "
                                   "and MicroVMM modules only)", "P-IMPORT", rel, imp.line,
                                   imp.col)
            dep = module_path(imp.module)
            if dep.startswith(OPAQUE_PREFIXES):
                if read_source(root, dep, overrides) is None:
                    raise ProfileError(f"import `{imp.module}`: no file {dep}", "P-IMPORT", rel,
                                       imp.line, imp.col)
                continue
            deps.append(dep)
            visit(dep, imp, rel)
        project.file_imports[rel] = deps
        state[rel] = 2
        order.append(rel)

    for rel in wanted:
        if rel.startswith(OPAQUE_PREFIXES):
            continue
        visit(rel, None, rel)
    project.files = order
    closure: dict[str, set[str]] = {}
    for rel in order:
        vis = {rel}
        for dep in project.file_imports[rel]:
            vis |= closure[dep]
        closure[rel] = vis
        check_module(project, modules[rel], vis)
    return project


def check_module(project: Project, mod: S.Module, visible: set[str]) -> None:
    """Type-check one parsed module and add its declarations to ``project``."""
    env = project.env
    file = mod.file
    ns_stack: list[tuple[str, list[str]]] = []
    namespace = ""
    opens: list[str] = []

    def qualify(name: str) -> str:
        return f"{namespace}.{name}" if namespace else name

    def declare(qname: str, decl: Decl, node: S.Node) -> None:
        if qname in env.decls:
            raise ProfileError(f"`{qname}` is already declared (in {env.decl_file[qname]})",
                               "P-NAME", file, node.line, node.col)
        env.add(qname, decl, file)

    def elaborator(current: str = "", statement: bool = False, ns: str | None = None
                   ) -> Elaborator:
        return Elaborator(env, file, namespace if ns is None else ns, opens, visible,
                          current=current, statement=statement)

    for cmd in mod.commands:
        if isinstance(cmd, S.NamespaceCmd):
            ns_stack.append((cmd.name, opens))
            namespace = qualify(cmd.name)
            opens = list(opens)
        elif isinstance(cmd, S.EndCmd):
            if not ns_stack or ns_stack[-1][0] != cmd.name:
                expected = ns_stack[-1][0] if ns_stack else None
                raise ProfileError(f"`end {cmd.name}` does not close "
                                   + (f"`namespace {expected}`" if expected else "a namespace"),
                                   "P-NAMESPACE", file, cmd.line, cmd.col)
            name, opens = ns_stack.pop()
            namespace = namespace[: -len(name)].rstrip(".")
        elif isinstance(cmd, S.OpenCmd):
            el = elaborator()
            for n in cmd.names:
                full = None
                parts = namespace.split(".") if namespace else []
                for k in range(len(parts), -1, -1):
                    cand = ".".join(parts[:k] + [n])
                    if any(q.startswith(cand + ".") for q in env.decls
                           if env.decl_file[q] in visible):
                        full = cand
                        break
                if full is None:
                    raise el.err(f"unknown namespace `{n}`", "P-OPEN", cmd)
                opens.append(full)
        elif isinstance(cmd, S.StructureCmd):
            qname = qualify(cmd.name)
            el = elaborator()
            fields: list[tuple[str, ir.Ty, str]] = []
            seen: set[str] = set()
            for fname, tyx, doc, pos in cmd.fields:
                if fname in seen:
                    raise el.err(f"field `{fname}` declared twice", "P-STRUCT", pos)
                seen.add(fname)
                ty = el.elab_type(tyx)
                fields.append((fname, ty, doc))
            st = ir.Structure(qname, fields, file, cmd.line, cmd.doc)
            declare(qname, st, cmd)
            project.structures[qname] = st
            for i, (fname, _, _) in enumerate(fields):
                env.add(f"{qname}.{fname}", FieldRef(st, i), file)
        elif isinstance(cmd, S.InductiveCmd):
            qname = qualify(cmd.name)
            names = [c for c, _, _ in cmd.ctors]
            for c, _, pos in cmd.ctors:
                if names.count(c) > 1:
                    raise ProfileError(f"constructor `{c}` declared twice", "P-ENUM", file,
                                       pos.line, pos.col)
            en = ir.Enum(qname, names, [d for _, d, _ in cmd.ctors], file, cmd.line, cmd.doc)
            declare(qname, en, cmd)
            project.enums[qname] = en
            for i, c in enumerate(names):
                env.add(f"{qname}.{c}", CtorRef(en, i), file)
        elif isinstance(cmd, S.DefCmd):
            qname = qualify(cmd.name)
            body_ns = ".".join(qname.split(".")[:-1])
            el = elaborator(current=qname, ns=body_ns)
            params = []
            for b in cmd.binders:
                ty = el.elab_type(b.ty)
                p = ir.Param(b.name, fresh_uid(), ty)
                params.append(p)
                el.locals[b.name] = Local(p.uid, ty)
            ret = el.elab_type(cmd.ret)
            body = el.elab(cmd.body, ret)
            d = ir.Def(qname, params, ret, body, file, cmd.line, cmd.doc)
            declare(qname, d, S.Node(start=cmd.start, end=cmd.end, line=cmd.name_line,
                                     col=cmd.name_col))
            project.defs[qname] = d
        elif isinstance(cmd, S.TheoremCmd):
            qname = qualify(cmd.name)
            el = elaborator(statement=True)
            params = []
            for b in cmd.binders:
                ty = el.elab_type(b.ty)
                p = ir.Param(b.name, fresh_uid(), ty)
                params.append(p)
                el.locals[b.name] = Local(p.uid, ty)
            stmt = el.elab(cmd.stmt, ir.PROP)
            th = ir.Theorem(qname, file, cmd.line, params, stmt, cmd.doc, mod.text,
                            cmd.proof_text)
            declare(qname, TheoremRef(th), cmd)
            project.theorems[qname] = th
