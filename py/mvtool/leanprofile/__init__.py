"""Front end for the MicroVMM Lean profile (``spec/profile.md``): parser, name resolution,
type checker, typed IR.

API::

    from mvtool.leanprofile import load_project, ProfileError, Project

    project = load_project(root=None, *, overrides=None)
        # parses and type-checks every .lean file under MicroVMM/{Spec,Model,Refinement,
        # Obligations} in import order (MicroVMM/Tactic.lean and MicroVMM/FFI/ may be imported
        # but are not parsed). ``overrides`` maps repository-relative paths to replacement
        # source text (mutants); nothing is read from disk for those paths and nothing written.
        # Raises ProfileError(message, rule, file, line, col); str(e) is
        # "file:line:col: [RULE] message". A missing file or unresolved import is P-IMPORT.

    project.files          # repository-relative paths, in dependency order
    project.theorems       # qualified name -> ir.Theorem(name, file, line, binders, statement,
                           #                              doc, source, proof)
    project.defs           # qualified name -> ir.Def(name, params, ret, body, file, line, doc)
    project.structures     # qualified name -> ir.Structure(name, fields, file, line, doc)
    project.enums          # qualified name -> ir.Enum(name, ctors, ctor_docs, file, line, doc)
    project.resolve(name, namespace="", opens=None) -> (qualified name, declaration) | None
    project.typecheck_statement(binders, statement, *, namespace="", opens=None) -> ir.Theorem
        # binders: [(name, type source)], statement: source text of a Prop; raises ProfileError

The IR (:mod:`mvtool.leanprofile.ir`) documents the exact meaning of every primitive; the SMT
backend (:mod:`mvtool.backends.smt`) and the extractor (:mod:`mvtool.extract`) consume it.
"""

from mvtool.leanprofile.errors import ProfileError
from mvtool.leanprofile.ir import Def, Enum, Structure, Theorem, Ty
from mvtool.leanprofile.project import Project, load_project

__all__ = ["Def", "Enum", "ProfileError", "Project", "Structure", "Theorem", "Ty",
           "load_project"]
