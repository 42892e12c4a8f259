"""Cross-file checks: every id a file cites exists, and pilot/production models are ready.

Each check yields :class:`Problem` values pointing at the line that cites the missing thing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prodcontrol.catalog.config import Config
from prodcontrol.catalog.loader import (
    CATALOG_FILES,
    INVENTORY_FILES,
    Catalog,
    Docs,
    Inventory,
    load_catalog_files,
    load_inventory_files,
)
from prodcontrol.catalog.readiness import missing_owner_roles
from prodcontrol.catalog.schema import (
    DataQualityControl,
    DriftControl,
    PerformanceControl,
    PerformanceEstimatedControl,
    PerformanceRealizedControl,
    ValueControl,
)
from prodcontrol.catalog.suggest import did_you_mean
from prodcontrol.catalog.types import CONTROLLED_STAGES, OWNER_ROLES
from prodcontrol.errors import ConfigError, Problem


def load_config(catalog_dir: Path, inventory_dir: Path) -> Config:
    """Load and check everything; raise one :class:`ConfigError` listing every problem."""
    catalog, problems, catalog_docs = load_catalog_files(catalog_dir)
    inventory, inventory_problems, inventory_docs = load_inventory_files(inventory_dir)
    problems += inventory_problems
    problems += _duplicates(catalog_docs, "controls.yaml", "controls", "id")
    problems += _duplicates(catalog_docs, "frameworks.yaml", "frameworks", "id")
    problems += _duplicates(inventory_docs, "models.yaml", "models", "name")
    problems += _duplicates(inventory_docs, "people.yaml", "people", "id")
    problems += _one_human_one_vote(inventory_docs)
    if catalog is not None:
        problems += list(check_catalog(catalog, catalog_docs))
    if catalog is not None and inventory is not None:
        problems += list(check_inventory(catalog, inventory, inventory_docs))
    if problems or catalog is None or inventory is None:
        raise ConfigError(problems)
    return Config(catalog=catalog, inventory=inventory)


def _duplicates(docs: Docs, name: str, key: str, id_field: str) -> list[Problem]:
    doc = docs.get(name)
    items = doc.data.get(key) if doc is not None and isinstance(doc.data, dict) else None
    if doc is None or not isinstance(items, list):
        return []
    seen: dict[Any, int] = {}
    problems = []
    for position, item in enumerate(items):
        ident = item.get(id_field) if isinstance(item, dict) else None
        if ident is None:
            continue
        if ident in seen:
            first = doc.index.line_of(doc.data, (key, seen[ident]))
            problems.append(
                doc.problem(
                    (key, position, id_field),
                    f"{key}[{ident}].{id_field}",
                    f"duplicate {id_field} '{ident}' (first at line {first}); "
                    f"each {id_field} must be unique",
                )
            )
        else:
            seen[ident] = position
    return problems


def _one_human_one_vote(docs: Docs) -> list[Problem]:
    """Two people entries with one e-mail or one Slack id would let one human vote twice."""
    doc = docs.get("people.yaml")
    items = doc.data.get("people") if doc is not None and isinstance(doc.data, dict) else None
    if doc is None or not isinstance(items, list):
        return []
    problems = []
    for field, what in (("email", "e-mail"), ("slack_id", "Slack user")):
        seen: dict[str, tuple[int, Any]] = {}
        for position, item in enumerate(items):
            value = item.get(field) if isinstance(item, dict) else None
            if not isinstance(value, str) or not value.strip():
                continue
            key = value.strip().lower() if field == "email" else value.strip()
            if key not in seen:
                seen[key] = (position, item.get("id"))
                continue
            first, first_id = seen[key]
            where = f"{doc.path}:{doc.index.line_of(doc.data, ('people', first, field))}"
            problems.append(
                doc.problem(
                    ("people", position, field),
                    f"people[{item.get('id')}].{field}",
                    f"{field} {value} is also people[{first_id}]'s at {where}; one {what} is "
                    "one person (one vote on a two-person gate): give each person their own",
                )
            )
    return problems


def check_catalog(catalog: Catalog, docs: Docs) -> Iterator[Problem]:
    controls_doc, tiers_doc = docs["controls.yaml"], docs["tiers.yaml"]
    clause_ids = catalog.clause_ids()
    known_frameworks = ", ".join(sorted(catalog.frameworks))
    for position, control in enumerate(catalog.controls.values()):
        for j, ref in enumerate(control.clauses):
            if ref not in clause_ids:
                framework = ref.split(":", 1)[0]
                hint = (
                    f"framework '{framework}' has no such clause; see frameworks.yaml"
                    if framework in catalog.frameworks
                    else f"write it as FRAMEWORK:CLAUSE with a framework from: {known_frameworks}"
                )
                yield controls_doc.problem(
                    ("controls", position, "clauses", j),
                    f"controls[{control.id}].clauses",
                    f"unknown clause '{ref}'; {hint}",
                )
    known_controls = ", ".join(sorted(catalog.controls))
    for tier_id, tier in catalog.tiers.items():
        for j, control_id in enumerate(tier.controls):
            if control_id not in catalog.controls:
                yield tiers_doc.problem(
                    ("tiers", tier_id, "controls", j),
                    f"tiers.{tier_id}.controls",
                    f"unknown control '{control_id}'{did_you_mean(control_id, catalog.controls)}"
                    f"; known controls: {known_controls}",
                )
        for control_id in tier.thresholds:
            if control_id not in tier.controls:
                yield tiers_doc.problem(
                    ("tiers", tier_id, "thresholds", control_id),
                    f"tiers.{tier_id}.thresholds",
                    f"override for '{control_id}', which this tier does not run; "
                    "add it to the tier's controls or remove the override",
                )
        if (
            tier.gate.mode != "none"
            and "error" in tier.gate.opens_on
            and tier.gate.on_timeout == "accept"
        ):
            yield tiers_doc.problem(
                ("tiers", tier_id, "gate", "on_timeout"),
                f"tiers.{tier_id}.gate.on_timeout",
                "a gate that opens on error may not time out to accept (a control that never "
                "ran would be accepted by silence); set on_timeout to rollback or suspend, or "
                "remove error from gate.opens_on",
            )
        if tier.gate.mode == "two_person" and not tier.gate.separation_of_duties:
            yield tiers_doc.problem(
                ("tiers", tier_id, "gate", "separation_of_duties"),
                f"tiers.{tier_id}.gate.separation_of_duties",
                "a two_person gate needs separation_of_duties: true (the requester never approves)",
            )


def check_inventory(catalog: Catalog, inventory: Inventory, docs: Docs) -> Iterator[Problem]:
    models_doc = docs["models.yaml"]
    tiers = ", ".join(sorted(catalog.tiers))
    positions = _positions(models_doc, "models", "name")
    for model in inventory.models.values():
        where = ("models", positions.get(model.name, 0))
        label = f"models[{model.name}]"
        if model.tier not in catalog.tiers:
            yield models_doc.problem(
                (*where, "tier"),
                f"{label}.tier",
                f"unknown tier '{model.tier}'{did_you_mean(model.tier, catalog.tiers)}; "
                f"use one of: {tiers}",
            )
        for role, person_id in model.owners.assigned().items():
            owner = inventory.people.get(person_id)
            if owner is None:
                yield models_doc.problem(
                    (*where, "owners", role),
                    f"{label}.owners.{role}",
                    f"unknown person '{person_id}'"
                    f"{did_you_mean(person_id, inventory.people)}; add them to people.yaml or "
                    "use an existing id",
                )
            elif role not in owner.roles:
                yield models_doc.problem(
                    (*where, "owners", role),
                    f"{label}.owners.{role}",
                    f"'{person_id}' does not hold the role {role} in people.yaml; "
                    "add the role to that person or name someone who holds it",
                )
        yield from _data_contract(model, models_doc, where, label)
        yield from _performance_contract(catalog, model, models_doc, where, label)
        yield from _use_case(catalog, model, models_doc, where, label)
        if model.stage in CONTROLLED_STAGES:
            yield from _readiness(catalog, model, models_doc, where, label)


def _data_contract(model: Any, doc: Any, where: tuple[str, int], label: str) -> Iterator[Problem]:
    """Each declared column has one role: a feature of one kind, the target or the prediction."""
    data = model.data
    if data is None:
        return
    roles = {data.target_column: "target_column", data.prediction_column: "prediction_column"}
    seen: dict[str, str] = {}
    for group in ("numerical", "categorical"):
        for position, column in enumerate(getattr(data, group)):
            loc = (*where, "data", group, position)
            if column in roles and column:
                role = roles[column]
                yield doc.problem(
                    loc,
                    f"{label}.data.{group}",
                    f"'{column}' is the {role} and is also listed as a feature; the "
                    f"{role.removesuffix('_column')} is never an input feature: remove it from "
                    f"data.{group}",
                )
            elif column in seen:
                yield doc.problem(
                    loc,
                    f"{label}.data.{group}",
                    f"'{column}' is listed twice (also in data.{seen[column]}); keep each column "
                    "in one list",
                )
            seen.setdefault(column, group)


CLASSIFIER_METRICS = ("roc_auc", "accuracy")
REGRESSOR_METRICS = ("mae", "rmse")


def _performance_contract(
    catalog: Catalog, model: Any, doc: Any, where: tuple[str, int], label: str
) -> Iterator[Problem]:
    """What the performance controls on data need from the model's ``data:`` section."""
    data = model.data
    if data is None:
        return
    at = (*where, "data")
    if data.task is None:
        for key in ("score_column", "labels"):
            if getattr(data, key) is not None:
                yield doc.problem(
                    (*at, key),
                    f"{label}.data.{key}",
                    f"data.{key} is given but data.task is not; say what the model does "
                    "(task: classification or task: regression) so the performance controls "
                    "know which metric to measure",
                )
        return
    tier = catalog.tiers.get(model.tier)
    controls = [catalog.controls.get(c) for c in tier.controls] if tier else []
    kinds = (PerformanceEstimatedControl, PerformanceRealizedControl)
    measured = [c for c in controls if isinstance(c, kinds)]
    if data.task == "classification" and data.score_column is None:
        yield doc.problem(
            (*at, "task"),
            f"{label}.data.score_column",
            "a classifier's performance is estimated and measured on its scores, and the model "
            "declares none: set data.score_column to the column with the predicted probability "
            "of the positive class (the prediction column, if it holds that probability)",
        )
    if data.task == "regression" and data.prediction_column is None:
        yield doc.problem(
            (*at, "task"),
            f"{label}.data.prediction_column",
            "a regressor's performance is measured on its predictions: set "
            "data.prediction_column",
        )
    if data.target_column is None:
        yield doc.problem(
            (*at, "task"),
            f"{label}.data.target_column",
            "the performance controls compare with the reference data's true outcome: set "
            "data.target_column (the label column of the reference data)",
        )
    allowed = CLASSIFIER_METRICS if data.task == "classification" else REGRESSOR_METRICS
    for control in measured:
        metric = control.params.metric
        if metric != "auto" and metric not in allowed:
            yield doc.problem(
                (*at, "task"),
                f"{label}.data.task",
                f"tier '{model.tier}' runs '{control.id}' with metric {metric}, which does not "
                f"measure a {data.task} model ({' or '.join(allowed)}); set the control's "
                "params.metric to auto or to one of those, or fix data.task",
            )
        if isinstance(control, PerformanceRealizedControl):
            yield from _realized_contract(control, data, doc, at, label)


def _realized_contract(
    control: PerformanceRealizedControl, data: Any, doc: Any, at: tuple[Any, ...], label: str
) -> Iterator[Problem]:
    params = control.params
    scored_at = getattr(data.current, "time_column", None)
    if data.labels is not None and params.window is not None and not scored_at:
        yield doc.problem(
            (*at, "current"),
            f"{label}.data.current.time_column",
            f"'{control.id}' keeps the predictions of its window, so the current data needs the "
            "time each prediction was scored: give data.current.time_column",
        )
    labels = data.labels
    if labels and params.max_label_delay and not (scored_at and labels.time_column):
        yield doc.problem(
            (*at, "labels"),
            f"{label}.data.labels.time_column",
            f"'{control.id}' counts labels that arrived within max_label_delay of their "
            "prediction: give data.labels.time_column and data.current.time_column",
        )


def _positions(doc: Any, key: str, id_field: str) -> dict[Any, int]:
    """Where each id first appears in the file as written (entries that failed are skipped)."""
    items = doc.data.get(key) if isinstance(doc.data, dict) else None
    found: dict[Any, int] = {}
    for position, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict):
            found.setdefault(item.get(id_field), position)
    return found


def _use_case(
    catalog: Catalog, model: Any, doc: Any, where: tuple[str, int], label: str
) -> Iterator[Problem]:
    """The use case names a known tier, and a value control has a KPI target it can compare."""
    use_case = model.use_case
    if use_case is not None and use_case.tier_requested not in catalog.tiers:
        yield doc.problem(
            (*where, "use_case", "tier_requested"),
            f"{label}.use_case.tier_requested",
            f"unknown tier '{use_case.tier_requested}'"
            f"{did_you_mean(use_case.tier_requested, catalog.tiers)}; use one of: "
            + ", ".join(sorted(catalog.tiers)),
        )
    tier = catalog.tiers.get(model.tier)
    if tier is None:
        return
    values = [c for c in map(catalog.controls.get, tier.controls) if isinstance(c, ValueControl)]
    for control in values if model.stage in CONTROLLED_STAGES else []:
        control_id = control.id
        if use_case is None:
            yield doc.problem(
                where,
                f"{label}.use_case",
                f"tier '{model.tier}' runs the value control '{control_id}'; give use_case "
                "with expected_value (kpi, metric_key, target, review_date)",
            )
        elif control.params.comparison == "relative" and use_case.expected_value.target == 0:
            yield doc.problem(
                (*where, "use_case", "expected_value", "target"),
                f"{label}.use_case.expected_value.target",
                f"the value control '{control_id}' compares relative to the target, which "
                "cannot be 0; give a non-zero target or use comparison: absolute",
            )


def _readiness(
    catalog: Catalog, model: Any, doc: Any, where: tuple[str, int], label: str
) -> Iterator[Problem]:
    for role in missing_owner_roles(model):
        yield doc.problem(
            (*where, "owners"),
            f"{label}.owners.{role}",
            f"readiness: a {model.stage} model needs a {role} owner; name a person in "
            f"owners.{role} (ownership before deployment), or move the model to experimentation",
        )
    tier = catalog.tiers.get(model.tier)
    if tier is None:
        return
    kinds = {type(catalog.controls[c]) for c in tier.controls if c in catalog.controls}
    if kinds & {DriftControl, DataQualityControl} and model.data is None:
        yield doc.problem(
            where,
            f"{label}.data",
            f"tier '{model.tier}' runs drift/data-quality controls; give data.reference "
            "and data.current for this model",
        )
    if PerformanceControl in kinds and model.baseline is None:
        yield doc.problem(
            where,
            f"{label}.baseline",
            f"tier '{model.tier}' runs a performance control; give baseline.metric "
            "(the MLflow metric to compare against the approved version)",
        )


__all__ = ["CATALOG_FILES", "INVENTORY_FILES", "OWNER_ROLES", "check_catalog", "load_config"]
