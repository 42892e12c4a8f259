"""Seed an evidence store through its real API, for the evidence and web tests.

Runs with Evidently-like reports, findings, gates, decisions, a waiver, an escalation with
delivery attempts, and an action.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from prodcontrol.adapters.store.migrate import upgrade
from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.catalog.config import Config
from prodcontrol.catalog.loader import default_catalog_dir
from prodcontrol.catalog.validate import load_config
from prodcontrol.cli import output
from prodcontrol.evidence import (
    ActionIn,
    ArtifactIn,
    DecisionIn,
    DeliveryAttemptIn,
    EscalationIn,
    FindingIn,
    GateIn,
    NotificationIn,
    VerdictIn,
    WaiverIn,
)
from prodcontrol.evidence.port import EvidenceStore
from prodcontrol.evidence.signing import SigningKey
from prodcontrol.testing import ManualClock

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SEED_START = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
SEED_MODELS = ("churn-classifier", "credit-limit-regressor", "fraud-detector")
DAYS = 5


@dataclass
class Seeded:
    runs: dict[str, list[str]] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)
    pending_gate: str = ""
    approved_gate: str = ""
    waiver: str = ""


def _value(model: str, control: str, day: int, fail: float) -> float:
    """Scores that drift upwards for fraud-detector's dataset drift (crossing fail on day 4)."""
    base = (sum(map(ord, model + control)) % 7) / 100 * fail
    if model == "fraud-detector" and control == "dataset-drift":
        return round(0.1 + 0.12 * day, 3)
    if model == "churn-classifier" and control == "dq-missing-share" and day == 2:
        return round(1.5 * fail, 4)
    return round(base + 0.02 * fail * day, 4)


def _verdict(value: float, warn: float | None, fail: float) -> str:
    if value >= fail:
        return "fail"
    return "warn" if warn is not None and value >= warn else "pass"


def _reports(out: Path, model: str, day: int, value: float) -> list[ArtifactIn]:
    out.mkdir(parents=True, exist_ok=True)
    html = out / "drift.html"
    html.write_text(
        f"<!doctype html><html><body><h1>Evidently data drift report</h1>"
        f"<p id='model'>{model} day {day}</p><p>share of drifted columns {value}</p></body></html>"
    )
    data = out / "drift.json"
    data.write_text(json.dumps({"model": model, "day": day, "drift_share": value}))
    return [
        ArtifactIn.from_file(
            html, name="drift.html", media_type="text/html", control_id="dataset-drift"
        ),
        ArtifactIn.from_file(
            data, name="drift.json", media_type="application/json", control_id="dataset-drift"
        ),
    ]


def seed(
    store: EvidenceStore,
    config: Config,
    clock: ManualClock,
    artifact_dir: Path,
    *,
    days: int = DAYS,
    start: datetime = SEED_START,
) -> Seeded:
    """Daily runs per model, then the human side of one fraud finding and one credit gate."""
    seeded = Seeded()
    clock.set(start)
    last_findings: dict[str, str] = {}
    for day in range(5 - days, 5):
        for model in SEED_MODELS:
            entry = config.model(model)
            run = store.start_run(model, "3", entry.tier, "prefect")
            verdicts, findings = [], []
            for control in config.controls_for(entry):
                t = control.thresholds
                value = _value(model, control.id, day, t.fail)
                result = _verdict(value, t.warn, t.fail)
                verdicts.append(
                    VerdictIn(
                        control_id=control.id,
                        kind=control.kind,
                        verdict=result,
                        value=value,
                        warn=t.warn,
                        fail=t.fail,
                        direction=t.direction,
                        reason=f"{control.id} measured {value}",
                    )
                )
                if result == "fail":
                    findings.append(
                        FindingIn(control_id=control.id, severity=control.severity, blocking=True)
                    )
            artifacts = _reports(artifact_dir / run.id, model, day, verdicts[0].value or 0.0)
            seeded.artifacts += [Path(a.path) for a in artifacts]
            status = "failed" if findings else "succeeded"
            store.finish_run(run.id, status, verdicts, artifacts, findings)
            seeded.runs.setdefault(model, []).append(run.id)
            for f in store.list_findings(model=model, status="open"):
                if model != "fraud-detector" or f.control_id == "dataset-drift":
                    last_findings[model] = f.id
            clock.advance(timedelta(minutes=5))
        clock.advance(timedelta(days=1) - timedelta(minutes=15))
    fraud_finding = last_findings["fraud-detector"]
    gate = store.open_gate(
        GateIn(
            finding_id=fraud_finding,
            model="fraud-detector",
            model_version="3",
            kind="finding",
            right="escalation_outcome",
            required_approvals=2,
            requested_by="system",
            on_approve="accept",
            on_reject="rollback",
            on_timeout="suspend",
            context={"control": "dataset-drift"},
        )
    )
    seeded.pending_gate = gate.id
    escalation = store.start_escalation(
        EscalationIn(
            finding_id=fraud_finding, gate_id=gate.id, model="fraud-detector", tier="high"
        ),
        [
            NotificationIn(
                idempotency_key=f"esc:{gate.id}:0",
                recipient_kind="person",
                recipient="chen",
                payload={"model": "fraud-detector", "text": "dataset-drift failed"},
            )
        ],
    )
    [note] = [n for n in store.list_notifications() if n.escalation_id == escalation.id]
    store.record_attempt(
        note.id, DeliveryAttemptIn(outcome="retry", status_code=429, error="ratelimited"), "pending"
    )
    store.record_attempt(note.id, DeliveryAttemptIn(outcome="ok", status_code=200), "sent")
    clock.advance(timedelta(minutes=20))
    store.acknowledge_escalation(escalation.id, "chen")

    credit = store.list_gates(model="credit-limit-regressor")
    credit_gate = (
        credit[0]
        if credit
        else store.open_gate(
            GateIn(
                model="credit-limit-regressor",
                model_version="3",
                kind="promotion",
                right="deploy",
                requested_by="emeka",
                on_approve="promote",
            )
        )
    )
    clock.advance(timedelta(minutes=5))
    store.record_decision(
        credit_gate.id,
        DecisionIn(person="dana", decision="approve", channel="cli", reason="validated on holdout"),
        credit_gate.version,
        "approved",
    )
    seeded.approved_gate = credit_gate.id
    store.record_action(
        ActionIn(
            gate_id=credit_gate.id,
            model="credit-limit-regressor",
            model_version="3",
            action="promote",
            requested_by="dana",
            status="applied",
        )
    )
    churn = store.list_findings(model="churn-classifier", status="open")
    if churn:
        waiver = store.grant_waiver(
            WaiverIn(
                finding_id=churn[-1].id,
                model="churn-classifier",
                control_id=churn[-1].control_id,
                reason="seasonal campaign, known shift",
                approver="dana",
                expires_at=clock.now() + timedelta(days=10),
            )
        )
        seeded.waiver = waiver.id
    return seeded


def use_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, **extra: str
) -> Path:
    """Point the CLI at a private state dir, the example inventory and ``database_url``."""
    for name in list(os.environ):
        if name.startswith("PRODCONTROL_") and not name.startswith("PRODCONTROL_REQUIRE_"):
            monkeypatch.delenv(name)
    config = tmp_path / "prodcontrol.toml"
    lines = [
        f'state_dir = "{tmp_path / "state"}"',
        f'inventory_dir = "{EXAMPLES}"',
        f'database_url = "{database_url}"',
        *(f'{key} = "{value}"' for key, value in extra.items()),
    ]
    config.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("PRODCONTROL_CONFIG", str(config))
    monkeypatch.setattr(output.console, "_width", 250)
    monkeypatch.setattr(output.err_console, "_width", 250)
    return tmp_path / "state"


def seeded_store(
    database_url: str, state: Path, days: int = DAYS, signer: SigningKey | None = None
) -> tuple[SqlEvidenceStore, Config, ManualClock, Seeded]:
    """A migrated store at ``database_url`` filled by :func:`seed` (artifacts under ``state``),
    signed by ``signer`` when one is given."""
    upgrade(database_url)
    clock = ManualClock()
    store = SqlEvidenceStore(database_url, clock=clock, signer=signer)
    config = load_config(default_catalog_dir(), EXAMPLES)
    return store, config, clock, seed(store, config, clock, state / "artifacts", days=days)


def raw_sql(url: str, *statements: str, **params: object) -> None:
    """Run SQL behind the store's back, as someone with database access could."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement), params)
    finally:
        engine.dispose()
