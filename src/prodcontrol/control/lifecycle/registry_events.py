"""What prodcontrol does when MLflow's registry changes (its webhooks, DESIGN §4).

* ``model_version_alias.created`` / ``deleted`` on a controlled model's serving alias: the
  model's tier controls run again at once through the same close-run use case as a scheduled
  run (``serving-version-approved`` among them once the catalog has it), and the run's gate
  opens; a failure escalates on the tier's chain as any run's does. An alias moved by hand is
  noticed now, not at the next cron slot. Other aliases are only recorded.
* ``model_version.created``: the new version is recorded; on a pilot or production model its
  readiness checks (the tier's controls, on that candidate version, plus ownership readiness)
  run, so a later ``promote`` has the control evidence it needs. A failing candidate is a
  finding like any other: its version's gate opens and its owners hear of it before anyone
  promotes it (an action on that gate acts only if the serving alias points at it).

Models not in models.yaml are ignored (counted by the web route, not chained).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prodcontrol.catalog.readiness import missing_owner_roles
from prodcontrol.control.ports import RunPorts

HANDLED = ("model_version_alias.created", "model_version_alias.deleted", "model_version.created")
TRIGGER = "mlflow-webhook"


@dataclass
class EventOutcome:
    event: str
    model: str
    recorded: bool = False
    run_id: str | None = None
    verdict: str | None = None
    gates: list[str] = field(default_factory=list)
    note: str = ""


def known(rt: RunPorts, model: str) -> bool:
    return model in rt.config.inventory.models


def handle(rt: RunPorts, event: str, data: dict[str, Any], delivery_id: str) -> EventOutcome:
    """Record the registry event and re-evaluate what it changed (see the module doc)."""
    model = str(data.get("name") or "")
    outcome = EventOutcome(event=event, model=model)
    if event not in HANDLED or not known(rt, model):
        outcome.note = "ignored: not a registry event prodcontrol acts on, or not in models.yaml"
        return outcome
    rt.store.record_event(
        f"mlflow.{event}",
        "model",
        model,
        model,
        {"delivery_id": delivery_id, **{k: data[k] for k in sorted(data) if k != "tags"}},
    )
    outcome.recorded = True
    if event.startswith("model_version_alias."):
        return _alias_changed(rt, outcome, str(data.get("alias") or ""))
    return _version_created(rt, outcome, str(data.get("version") or ""))


def _controlled(rt: RunPorts, model: str) -> bool:
    from prodcontrol.control.lifecycle.lifecycle import is_controlled

    return is_controlled(rt, model)


def _alias_changed(rt: RunPorts, outcome: EventOutcome, alias: str) -> EventOutcome:
    from prodcontrol.control.runs.checks import run_checks

    entry = rt.config.model(outcome.model)
    if alias != entry.serving_alias:
        outcome.note = f"alias '{alias}' is not the serving alias '{entry.serving_alias}'"
        return outcome
    if not _controlled(rt, outcome.model):
        outcome.note = f"{outcome.model} is not in pilot or production"
        return outcome
    result = run_checks(rt, outcome.model, trigger=TRIGGER)
    outcome.run_id, outcome.verdict = result.run_id, result.verdict
    outcome.gates = [result.gate_id] if result.gate_id else []
    outcome.note = f"serving alias moved: re-evaluated version {result.version}"
    return outcome


def _version_created(rt: RunPorts, outcome: EventOutcome, version: str) -> EventOutcome:
    from prodcontrol.control.runs.checks import run_checks

    entry = rt.config.model(outcome.model)
    if not _controlled(rt, outcome.model):
        outcome.note = f"{outcome.model} is not in pilot or production: recorded only"
        return outcome
    result = run_checks(rt, outcome.model, trigger=TRIGGER, version=version)
    outcome.run_id, outcome.verdict = result.run_id, result.verdict
    missing = missing_owner_roles(entry)
    outcome.note = f"readiness checks on candidate version {version}: {result.verdict}" + (
        f"; ownership: no {', '.join(missing)}" if missing else "; ownership: ready"
    )
    return outcome
