"""The invariant catalogue (``spec/invariants.yaml``) and the model mutants
(``tests/mutants/mutants.yaml``): pydantic models, loading and validation.

Both files are validated strictly (unknown fields, duplicate ids, empty texts, bad kinds are
errors). Every error is reported as one line naming the file, the line, the entry id and the
field, e.g. ``spec/invariants.yaml:42: obligation 'immut_queue_num', field 'kind': Input should
be 'invariant', 'transition', 'refinement' or 'frame'``.

Type-checking the statements against the Lean model is the second stage, done by
:func:`mvtool.gen.render` with the profile front end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from mvtool.errors import MvtoolError

#: where the catalogue and the mutants live, relative to the repository root
CATALOGUE_PATH = "spec/invariants.yaml"
SCHEMA_PATH = "spec/invariants.schema.json"
MUTANTS_PATH = "tests/mutants/mutants.yaml"

#: the Lean namespace of the generated obligations and the namespaces statements see opened
OBLIGATIONS_NAMESPACE = "MicroVMM.Obligations"

Kind = Literal["invariant", "transition", "refinement", "frame"]
Backend = Literal["smt", "lean"]

_ID_RE = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"
_GROUP_RE = r"^[A-Z][A-Za-z0-9]*$"
_LEAN_IDENT_RE = r"^[A-Za-z_][A-Za-z0-9_']*$"

Id = Annotated[str, StringConstraints(pattern=_ID_RE, max_length=80)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


def _no_comment_close(value: str) -> str:
    # Titles, sources and rationales are rendered into Lean doc comments.
    if "-/" in value or "/-" in value:
        raise ValueError("must not contain '-/' or '/-' (it is rendered into a Lean doc comment)")
    return value


class Obligation(BaseModel):
    """One proof obligation: a named profile-Lean proposition over explicit binders."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id = Field(description="stable snake_case id; also the Lean theorem name")
    title: Text = Field(description="one-line summary")
    group: Annotated[str, StringConstraints(pattern=_GROUP_RE)] = Field(
        description="topic; the obligation is rendered into MicroVMM/Obligations/<group>.lean")
    kind: Kind = Field(description="invariant | transition | refinement | frame")
    source: list[Text] = Field(min_length=1, description="VirtIO sections, CVEs, upstream fixes")
    rationale: Text = Field(description="why the obligation matters")
    binders: dict[str, Text] = Field(
        min_length=1, description="binder name -> profile type, in order (e.g. s: State)")
    statement: Text = Field(description="profile Lean proposition over the binders")
    backends: list[Backend] = Field(min_length=1, description="backends expected to prove it")

    @field_validator("title", "rationale")
    @classmethod
    def _doc_safe(cls, value: str) -> str:
        return _no_comment_close(value)

    @field_validator("title")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value:
            raise ValueError("must be a single line")
        return value

    @field_validator("source")
    @classmethod
    def _sources_doc_safe(cls, value: list[str]) -> list[str]:
        return [_no_comment_close(v) for v in value]

    @field_validator("binders")
    @classmethod
    def _binder_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.match(_LEAN_IDENT_RE, name):
                raise ValueError(f"binder name {name!r} is not a Lean identifier")
        return value

    @field_validator("statement")
    @classmethod
    def _statement_text(cls, value: str) -> str:
        if "-/" in value or "/-" in value or "--" in value:
            raise ValueError("must be a proposition only (no comments)")
        return value

    @field_validator("backends")
    @classmethod
    def _unique_backends(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("backends must not repeat")
        return value

    @property
    def theorem_name(self) -> str:
        """The qualified Lean name of the generated theorem."""
        return f"{OBLIGATIONS_NAMESPACE}.{self.id}"

    @property
    def binder_list(self) -> list[tuple[str, str]]:
        """The binders as (name, type) pairs, in declaration order."""
        return list(self.binders.items())


class Catalogue(BaseModel):
    """The whole catalogue: a format version and the obligations."""

    model_config = ConfigDict(extra="forbid", frozen=True,
                              json_schema_extra={"title": "MicroVMM invariant catalogue"})

    version: Literal[1] = Field(description="format version of this file")
    obligations: list[Obligation] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Catalogue:
        seen: set[str] = set()
        for ob in self.obligations:
            if ob.id in seen:
                raise ValueError(f"duplicate obligation id {ob.id!r}")
            seen.add(ob.id)
        return self

    def by_id(self) -> dict[str, Obligation]:
        """Obligations keyed by id."""
        return {ob.id: ob for ob in self.obligations}

    def groups(self) -> dict[str, list[Obligation]]:
        """Obligations by group, groups sorted by name, obligations in catalogue order."""
        out: dict[str, list[Obligation]] = {}
        for ob in self.obligations:
            out.setdefault(ob.group, []).append(ob)
        return dict(sorted(out.items()))


class Edit(BaseModel):
    """One textual edit of a Lean model file: ``find`` must occur exactly once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: Annotated[str, StringConstraints(pattern=r"^MicroVMM/[A-Za-z0-9_/]+\.lean$")]
    find: Annotated[str, StringConstraints(min_length=1)]
    replace: str


class Mutant(BaseModel):
    """A seeded bug in the model that the backends must refute on each target obligation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    description: Text
    targets: list[Id] = Field(min_length=1, description="obligations it must break")
    edits: list[Edit] = Field(min_length=1)

    def apply(self, root: Path, base: dict[str, str] | None = None) -> dict[str, str]:
        """The mutated texts of the files this mutant edits (repository-relative path -> text),
        for ``load_project(overrides=...)``; nothing is written. ``base`` supplies texts to start
        from instead of the files on disk. Raises :class:`MvtoolError` if a ``find`` text does
        not occur exactly once."""
        out: dict[str, str] = {}
        for n, edit in enumerate(self.edits):
            if edit.file in out:
                text = out[edit.file]
            elif base is not None and edit.file in base:
                text = base[edit.file]
            else:
                path = root / edit.file
                if not path.is_file():
                    raise MvtoolError(f"{MUTANTS_PATH}: mutant {self.id!r}, edit {n}: "
                                      f"no file {edit.file}")
                text = path.read_text(encoding="utf-8")
            count = text.count(edit.find)
            if count != 1:
                what = "does not occur" if count == 0 else f"occurs {count} times"
                raise MvtoolError(f"{MUTANTS_PATH}: mutant {self.id!r}, edit {n}: the `find` "
                                  f"text {what} in {edit.file}")
            out[edit.file] = text.replace(edit.find, edit.replace)
        return out


class MutantSet(BaseModel):
    """The mutants file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    mutants: list[Mutant] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> MutantSet:
        seen: set[str] = set()
        for m in self.mutants:
            if m.id in seen:
                raise ValueError(f"duplicate mutant id {m.id!r}")
            seen.add(m.id)
        return self

    def by_id(self) -> dict[str, Mutant]:
        """Mutants keyed by id."""
        return {m.id: m for m in self.mutants}


# ---- YAML loading with line numbers ------------------------------------------------------------

#: libyaml's parser where PyYAML was built with it (several times faster than the pure-Python
#: one: the catalogue is read in every process of `mvtool prove`).
_SafeLoaderBase: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoaderBase):  # type: ignore[misc, valid-type]
    """A safe loader that rejects duplicate mapping keys (PyYAML keeps the last silently)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode,
                       deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    out: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 _construct_mapping)

# YAML 1.2 booleans only: in YAML 1.1 `off`, `on`, `yes`, `no` are booleans, and `off` is the
# natural name of a register-offset binder.
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                       re.compile(r"^(?:true|false|True|False|TRUE|FALSE)$"),
                                       list("tTfF"))


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at pydantic location ``loc`` (as deep as it exists)."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        nxt = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == part:
                    nxt = v
                    line = k.start_mark.line + 1
                    break
        elif (isinstance(node, yaml.SequenceNode) and isinstance(part, int)
              and 0 <= part < len(node.value)):
            nxt = node.value[part]
        node = nxt
    if node is not None:
        line = node.start_mark.line + 1 if line is None else line
    return line


@dataclass(frozen=True)
class _Raw:
    data: Any
    node: yaml.Node | None


def _read_yaml(path: Path, rel: str) -> _Raw:
    if not path.is_file():
        raise MvtoolError(f"{rel}: file not found")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{rel}:{mark.line + 1}" if mark is not None else rel
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise MvtoolError(f"{where}: malformed YAML: {problem}") from None
    return _Raw(data, node)


def _entry_name(data: Any, loc: tuple[Any, ...], list_key: str, noun: str) -> str:
    """`obligation 'id'` for a location inside the list ``list_key``."""
    if len(loc) >= 2 and loc[0] == list_key and isinstance(loc[1], int):
        try:
            entry = data[list_key][loc[1]]
            ident = entry.get("id") if isinstance(entry, dict) else None
        except (KeyError, IndexError, TypeError):
            ident = None
        return f"{noun} {ident!r}" if ident else f"{noun} #{loc[1] + 1}"
    return "top level"


def _format_validation(exc: ValidationError, raw: _Raw, rel: str, list_key: str,
                       noun: str) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    line = _line_of(raw.node, loc)
    where = f"{rel}:{line}" if line else rel
    entry = _entry_name(raw.data, loc, list_key, noun)
    field_path = [str(p) for p in loc[2:]] if entry != "top level" else [str(p) for p in loc]
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if field_path:
        field_txt = f", field '{field_path[0]}'" + (
            f" ({'.'.join(field_path[1:])})" if len(field_path) > 1 else "")
    else:
        field_txt = ""
    more = f" (and {len(errors) - 1} more error{'s' if len(errors) > 2 else ''})" \
        if len(errors) > 1 else ""
    return f"{where}: {entry}{field_txt}: {msg}{more}"


def load_catalogue(root: Path) -> Catalogue:
    """Load and validate ``spec/invariants.yaml`` under ``root`` (no type-checking)."""
    raw = _read_yaml(root / CATALOGUE_PATH, CATALOGUE_PATH)
    try:
        return Catalogue.model_validate(raw.data)
    except ValidationError as exc:
        raise MvtoolError(_format_validation(exc, raw, CATALOGUE_PATH, "obligations",
                                             "obligation")) from None


def load_mutants(root: Path, catalogue: Catalogue | None = None) -> MutantSet:
    """Load and validate ``tests/mutants/mutants.yaml``; with ``catalogue``, also check that every
    target names an obligation and that every obligation is targeted by some mutant."""
    raw = _read_yaml(root / MUTANTS_PATH, MUTANTS_PATH)
    try:
        mutants = MutantSet.model_validate(raw.data)
    except ValidationError as exc:
        raise MvtoolError(_format_validation(exc, raw, MUTANTS_PATH, "mutants", "mutant")) \
            from None
    if catalogue is not None:
        ids = catalogue.by_id()
        for m in mutants.mutants:
            for t in m.targets:
                if t not in ids:
                    raise MvtoolError(f"{MUTANTS_PATH}: mutant {m.id!r}, field 'targets': "
                                      f"unknown obligation {t!r}")
        targeted = {t for m in mutants.mutants for t in m.targets}
        missing = [ob.id for ob in catalogue.obligations if ob.id not in targeted]
        if missing:
            raise MvtoolError(f"{MUTANTS_PATH}: no mutant targets obligation "
                              f"{missing[0]!r}" + (f" (and {len(missing) - 1} more)"
                                                   if len(missing) > 1 else ""))
    return mutants


def catalogue_line(root: Path, obligation_id: str, field: str) -> int | None:
    """1-based line of ``field`` of the obligation ``obligation_id`` in the catalogue file."""
    raw = _read_yaml(root / CATALOGUE_PATH, CATALOGUE_PATH)
    obs = raw.data.get("obligations", []) if isinstance(raw.data, dict) else []
    for n, entry in enumerate(obs):
        if isinstance(entry, dict) and entry.get("id") == obligation_id:
            return _line_of(raw.node, ("obligations", n, field))
    return None


def json_schema() -> dict[str, Any]:
    """The JSON schema of ``spec/invariants.yaml``, generated from :class:`Catalogue`."""
    schema = Catalogue.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
