"""Read the catalog and the inventory from disk; collect every problem before raising one error."""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from prodcontrol.catalog.schema import (
    Control,
    ControlsFile,
    Framework,
    FrameworksFile,
    ModelEntry,
    ModelsFile,
    PeopleFile,
    Person,
    TierPolicy,
    TiersFile,
)
from prodcontrol.catalog.suggest import did_you_mean
from prodcontrol.catalog.yamlsource import Loc, YamlDocument, load_yaml
from prodcontrol.errors import ConfigError, Problem

CATALOG_FILES = ("controls.yaml", "tiers.yaml", "frameworks.yaml")
INVENTORY_FILES = ("models.yaml", "people.yaml")

FileModel = TypeVar("FileModel", bound=BaseModel)


@dataclass(frozen=True)
class Catalog:
    directory: Path
    controls: dict[str, Control]
    tiers: dict[str, TierPolicy]
    frameworks: dict[str, Framework]

    def clause_ids(self) -> set[str]:
        return {f"{fw.id}:{clause.id}" for fw in self.frameworks.values() for clause in fw.clauses}


@dataclass(frozen=True)
class Inventory:
    directory: Path
    models: dict[str, ModelEntry]
    people: dict[str, Person]


def default_catalog_dir() -> Path:
    """The catalog shipped in the wheel, or the repository's ``control_catalog/`` in a checkout."""
    packaged = Path(str(resources.files("prodcontrol"))) / "control_catalog"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "control_catalog"


@dataclass
class _Loaded:
    """Parsed files of one directory, with the problems found so far."""

    docs: dict[str, YamlDocument]
    problems: list[Problem]


def _read_dir(directory: Path, names: tuple[str, ...], what: str) -> _Loaded:
    problems: list[Problem] = []
    docs: dict[str, YamlDocument] = {}
    if not directory.is_dir():
        problems.append(
            Problem(str(directory), 0, "", f"{what} directory not found; pass an existing one")
        )
        return _Loaded(docs, problems)
    for name in names:
        path = directory / name
        if not path.is_file():
            problems.append(Problem(str(path), 0, "", f"missing: every {what} needs {name}"))
            continue
        doc = load_yaml(path)
        problems.extend(doc.problems)
        docs[name] = doc
    return _Loaded(docs, problems)


def parse_file(doc: YamlDocument, model: type[FileModel]) -> tuple[FileModel | None, list[Problem]]:
    """Validate one document against its file model; every pydantic error becomes a Problem."""
    if doc.data is None and doc.problems:
        return None, []
    if not isinstance(doc.data, dict):
        top = ", ".join(model.model_fields)
        return None, [doc.problem((), "", f"the file must be a mapping with the key(s): {top}")]
    try:
        return model.model_validate(doc.data), []
    except ValidationError as exc:
        return None, [_to_problem(doc, model, err) for err in exc.errors()]


def _to_problem(doc: YamlDocument, model: type[BaseModel], err: ErrorDetails) -> Problem:
    loc: Loc = tuple(err["loc"])
    field_name = field_path(doc.data, loc)
    if err["type"] == "extra_forbidden":
        allowed = allowed_keys(model, doc.data, loc[:-1])
        hint = did_you_mean(loc[-1], allowed)
        hint += f"; allowed here: {', '.join(allowed)}" if allowed else ""
        return doc.problem(loc, field_name, f"unknown key '{loc[-1]}'{hint}")
    if err["type"] == "missing":
        return doc.problem(loc, field_name, f"required key '{loc[-1]}' is missing; add it")
    given = err.get("input")
    special = _value_message(err, given)
    if special:
        return doc.problem(loc, field_name, special)
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] not in {"value_error", "union_tag_invalid", "literal_error"} and isinstance(
        given, str | int | float | bool
    ):
        message += f" (got {given!r})"
    return doc.problem(loc, field_name, message)


SLUG_RULE = "lower-case letters, digits, '-', '_' and '.', starting with a letter or digit"
DATE_TYPES = frozenset(
    {"date_parsing", "date_from_datetime_parsing", "date_type", "date_from_datetime_inexact"}
)


def _value_message(err: ErrorDetails, given: Any) -> str | None:
    """Messages for the value mistakes people make most: an id or enum in the wrong case, a
    date that is no date; each says what would be right."""
    kind = err["type"]
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        return (
            f"{given!r} is not one of: {', '.join(expected)}{did_you_mean(given, expected)}"
            if expected
            else None
        )
    if kind == "string_pattern_mismatch" and isinstance(given, str):
        pattern = str((err.get("ctx") or {}).get("pattern", ""))
        if pattern.startswith("^[a-z0-9]"):
            fixed = re.sub(r"[^a-z0-9_.-]+", "-", given.strip().lower()).strip("-_.")
            hint = f" (did you mean '{fixed}'?)" if fixed else ""
            return f"{given!r} is not a valid id: use {SLUG_RULE}{hint}"
    if kind in DATE_TYPES:
        reason = err["msg"].split(",", 1)[-1].strip() if "," in err["msg"] else "not a date"
        return f"{given!r} is not a date ({reason}); write dates as YYYY-MM-DD, e.g. 2026-12-01"
    return None


def field_path(data: Any, loc: Loc) -> str:
    """``controls[dataset-drift].thresholds.warn``: list items are named by their id or name."""
    text = ""
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            text += f".{part}" if text else str(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            item = node[part]
            label = item.get("id", item.get("name", part)) if isinstance(item, dict) else part
            text += f"[{label}]"
            node = item
        elif isinstance(part, str) and not isinstance(node, dict | list):
            break
        elif isinstance(node, dict) and isinstance(part, str) and part not in node:
            # a key the user did not write: a missing one, or a union tag pydantic adds
            tag_like = any(part == v for v in node.values() if isinstance(v, str))
            if not tag_like:
                text += f".{part}" if text else part
    return text


def allowed_keys(model: type[BaseModel], data: Any, loc: Loc) -> list[str]:
    """The keys the model accepts at ``loc``, following lists, dicts and tagged unions."""
    current: Any = model
    node = data
    for part in loc:
        current = _unwrap(current, node)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if isinstance(part, str) and part in current.model_fields:
                current = current.model_fields[part].annotation
                node = node.get(part) if isinstance(node, dict) else None
                continue
            if isinstance(part, str):  # a union tag: already resolved by _unwrap
                continue
        args = typing.get_args(current)
        if isinstance(node, list) and isinstance(part, int):
            current, node = (args[0] if args else Any), node[part] if part < len(node) else None
        elif isinstance(node, dict):
            current, node = (args[-1] if args else Any), node.get(part)
    current = _unwrap(current, node)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return []


def _unwrap(annotation: Any, node: Any) -> Any:
    """Strip Annotated/Optional; pick the union member whose literal tag matches the data."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = _pick_member(members, node)
            if isinstance(annotation, list):
                return None
            continue
        return annotation


def _pick_member(members: list[Any], node: Any) -> Any:
    if len(members) == 1:
        return members[0]
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    if isinstance(node, dict):
        for candidate in models:
            for name, info in candidate.model_fields.items():
                if typing.get_origin(info.annotation) is typing.Literal and node.get(
                    name
                ) in typing.get_args(info.annotation):
                    return candidate
    return models[0] if len(models) == 1 else members


Docs = dict[str, YamlDocument]


def load_catalog_files(directory: Path) -> tuple[Catalog | None, list[Problem], Docs]:
    loaded = _read_dir(directory, CATALOG_FILES, "catalog")
    problems = loaded.problems
    parsed: dict[str, Any] = {}
    models: tuple[type[BaseModel], ...] = (ControlsFile, TiersFile, FrameworksFile)
    for name, model in zip(CATALOG_FILES, models, strict=True):
        if name in loaded.docs:
            value, found = parse_file(loaded.docs[name], model)
            problems.extend(found)
            parsed[name] = value
    if any(v is None for v in parsed.values()) or len(parsed) < len(CATALOG_FILES):
        return None, problems, loaded.docs
    controls_file: ControlsFile = parsed["controls.yaml"]
    catalog = Catalog(
        directory=directory,
        controls={c.id: c for c in controls_file.controls},
        tiers=dict(parsed["tiers.yaml"].tiers),
        frameworks={f.id: f for f in parsed["frameworks.yaml"].frameworks},
    )
    return catalog, problems, loaded.docs


def load_inventory_files(directory: Path) -> tuple[Inventory | None, list[Problem], Docs]:
    loaded = _read_dir(directory, INVENTORY_FILES, "inventory")
    problems = loaded.problems
    parsed: dict[str, Any] = {}
    models: tuple[type[BaseModel], ...] = (ModelsFile, PeopleFile)
    for name, model in zip(INVENTORY_FILES, models, strict=True):
        if name in loaded.docs:
            value, found = parse_file(loaded.docs[name], model)
            problems.extend(found)
            parsed[name] = value
    if parsed.get("models.yaml") is None and "models.yaml" in loaded.docs:
        parsed["models.yaml"] = _valid_models(loaded.docs["models.yaml"])
    if any(v is None for v in parsed.values()) or len(parsed) < len(INVENTORY_FILES):
        return None, problems, loaded.docs
    inventory = Inventory(
        directory=directory,
        models={m.name: m for m in parsed["models.yaml"].models},
        people={p.id: p for p in parsed["people.yaml"].people},
    )
    return inventory, problems, loaded.docs


def _valid_models(doc: YamlDocument) -> ModelsFile | None:
    """The model entries that are valid on their own.

    Nothing refers to a model, so checking the rest of the file against the other files still
    finds real problems (unknown tier, missing owner) in the same pass as the schema errors.
    """
    items = doc.data.get("models") if isinstance(doc.data, dict) else None
    if not isinstance(items, list):
        return None
    valid = []
    for item in items:
        try:
            valid.append(ModelEntry.model_validate(item))
        except ValidationError:
            continue
    return ModelsFile.model_construct(models=valid)


def raise_if(problems: list[Problem]) -> None:
    if problems:
        raise ConfigError(problems)
