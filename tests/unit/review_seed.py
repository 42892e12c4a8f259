"""An October 2026 of evidence, written through the real store API with a manual clock.

Used by test_effectiveness.py (numbers worked out by hand there, on the in-memory store) and by
tests/integration/test_operating_review.py (the rendered page, on SQLite). Models and tiers are the
examples' (churn-classifier low, credit-limit-regressor medium, fraud-detector high).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from prodcontrol.adapters.store.migrate import upgrade
from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.catalog.config import Config
from prodcontrol.catalog.loader import Inventory, default_catalog_dir
from prodcontrol.catalog.validate import load_config
from prodcontrol.evidence.port import EvidenceStore
from prodcontrol.evidence.records import (
    ActionIn,
    DecisionIn,
    EscalationIn,
    FindingIn,
    GateIn,
    VerdictIn,
    WaiverIn,
)
from prodcontrol.testing import InMemoryEvidenceStore, ManualClock

ROOT = Path(__file__).resolve().parents[2]
CHURN, CREDIT, FRAUD = "churn-classifier", "credit-limit-regressor", "fraud-detector"


def at(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def config() -> Config:
    """The examples, with fraud-detector last reviewed on 2026-07-01 (due again 2026-09-29)."""
    base = load_config(default_catalog_dir(), ROOT / "examples")
    models = dict(base.inventory.models)
    models[FRAUD] = models[FRAUD].model_copy(update={"last_review": date(2026, 7, 1)})
    inventory = Inventory(base.inventory.directory, models, dict(base.inventory.people))
    return Config(catalog=base.catalog, inventory=inventory)


def _verdict(control_id: str, result: str) -> VerdictIn:
    return VerdictIn(
        control_id=control_id,
        kind="drift",
        verdict=result,  # type: ignore[arg-type]
        value=0.5 if result != "pass" else 0.01,
        warn=0.1,
        fail=0.3,
        direction="higher_is_worse",
        reason=f"{control_id} {result}",
    )


class Seeder:
    def __init__(self, url: str | None = None) -> None:
        """Into the SQL store at ``url``, or into an in-memory store."""
        self.clock = ManualClock(at(1, 0))
        self.store: EvidenceStore
        if url is None:
            self.store = InMemoryEvidenceStore(clock=self.clock)
        else:
            upgrade(url)
            self.store = SqlEvidenceStore(url, clock=self.clock)

    def run(self, model: str, tier: str, start: datetime, failing: str | None = None) -> str | None:
        """A run started at ``start``, finished a minute later; returns its finding id."""
        self.clock.set(start)
        run = self.store.start_run(model, "3", tier, "prefect")
        self.clock.set(start + timedelta(minutes=1))
        verdicts = [_verdict("dq-schema", "pass")]
        findings = []
        if failing:
            verdicts.append(_verdict(failing, "fail"))
            findings.append(FindingIn(control_id=failing, severity="high", blocking=True))
        self.store.finish_run(run.id, "failed" if failing else "succeeded", verdicts, [], findings)
        if not failing:
            return None
        return next(f.id for f in self.store.list_findings(model) if f.run_id == run.id)

    def gate(self, model: str, finding_id: str | None, when: datetime, approvals: int) -> str:
        self.clock.set(when)
        gate = self.store.open_gate(
            GateIn(
                finding_id=finding_id,
                model=model,
                model_version="3",
                kind="finding" if finding_id else "review",
                right="escalation_outcome",
                required_approvals=approvals,
                due_at=when + timedelta(hours=8),
            )
        )
        return gate.id

    def decide(self, gate_id: str, person: str, when: datetime, value: str, close: str | None):
        self.clock.set(when)
        version = self.store.get_gate(gate_id).version
        decision = DecisionIn(person=person, decision=value, channel="cli")  # type: ignore[arg-type]
        return self.store.record_decision(gate_id, decision, version, close)  # type: ignore[arg-type]

    def escalation(self, model: str, tier: str, when: datetime, finding_id: str | None) -> str:
        self.clock.set(when)
        esc = self.store.start_escalation(
            EscalationIn(finding_id=finding_id, model=model, tier=tier, next_due_at=when)
        )
        return esc.id

    def action(self, model: str, kind: str, when: datetime) -> None:
        self.clock.set(when)
        self.store.record_action(
            ActionIn(
                model=model,
                model_version="3",
                action=kind,  # type: ignore[arg-type]
                requested_by="system",
                status="applied",
                applied_at=when,
            )
        )


def seed_october(url: str | None = None) -> Seeder:
    """The scenario test_effectiveness.py works out by hand."""
    s = Seeder(url)
    # low tier (weekly, Monday 06:00): on schedule Oct 5 and Oct 12 (twice: counts once)
    s.run(CHURN, "low", at(5, 6, 0))
    churn_finding = s.run(CHURN, "low", at(12, 6, 5), failing="dataset-drift")
    s.run(CHURN, "low", at(12, 7, 0))
    churn_esc = s.escalation(CHURN, "low", at(12, 6, 6), churn_finding)
    s.clock.set(at(12, 18, 6))
    s.store.acknowledge_escalation(churn_esc, "chen")  # 12 h: within the 2 d SLA

    # medium tier (daily 05:00): on schedule Oct 1 and Oct 2
    credit_1 = s.run(CREDIT, "medium", at(1, 5, 0), failing="dq-missing-share")
    credit_gate = s.gate(CREDIT, credit_1, at(1, 5, 1), approvals=1)
    credit_esc = s.escalation(CREDIT, "medium", at(1, 5, 1), credit_1)
    s.clock.set(at(1, 7, 1))
    s.store.acknowledge_escalation(credit_esc, "emeka")  # 2 h: within the 4 h SLA
    s.decide(credit_gate, "emeka", at(3, 9, 1), "reject", "rejected")  # 52 h > 2 d SLA
    s.action(CREDIT, "suspend", at(3, 9, 2))
    assert credit_1 is not None
    s.clock.set(at(1, 6, 0))
    s.store.grant_waiver(
        WaiverIn(
            finding_id=credit_1,
            model=CREDIT,
            control_id="dq-missing-share",
            reason="known upstream outage",
            approver="dana",
            expires_at=at(8, 6, 0),  # expires in October
        )
    )
    credit_2 = s.run(CREDIT, "medium", at(2, 5, 10), failing="dq-missing-share")
    assert credit_2 is not None
    s.clock.set(at(8, 7, 0))
    s.store.grant_waiver(  # a renewal: the same model and control were waived before
        WaiverIn(
            finding_id=credit_2,
            model=CREDIT,
            control_id="dq-missing-share",
            reason="outage continues",
            approver="dana",
            expires_at=at(7, 7, 0, month=11),
        )
    )

    # high tier (every 4 h): two runs, each with a finding, a two-person gate and an escalation
    fraud_1 = s.run(FRAUD, "high", at(3, 8, 0), failing="dataset-drift")
    gate_1 = s.gate(FRAUD, fraud_1, at(3, 8, 1), approvals=2)
    esc_1 = s.escalation(FRAUD, "high", at(3, 8, 1), fraud_1)
    s.clock.set(at(3, 9, 1))
    s.store.acknowledge_escalation(esc_1, "chen")  # 1 h > the 30 min SLA
    s.decide(gate_1, "chen", at(3, 10, 1), "approve", None)
    s.decide(gate_1, "dana", at(3, 12, 1), "approve", "approved")  # 4 h: within 8 h

    fraud_2 = s.run(FRAUD, "high", at(20, 12, 0), failing="performance-vs-baseline")
    gate_2 = s.gate(FRAUD, fraud_2, at(20, 12, 1), approvals=2)
    esc_2 = s.escalation(FRAUD, "high", at(20, 12, 1), fraud_2)
    s.clock.set(at(20, 13, 1))
    s.store.advance_escalation(esc_2, 2, at(20, 16, 1))
    s.clock.set(at(20, 16, 1))
    s.store.advance_escalation(esc_2, 5, at(20, 17, 1))  # all five steps notified
    s.clock.set(at(20, 20, 1))
    s.store.expire_gate(gate_2, s.store.get_gate(gate_2).version)
    s.store.resolve_escalation(esc_2, "gate expired")  # answered only by the timeout: 8 h
    s.action(FRAUD, "rollback", at(20, 20, 2))

    # a model review of fraud-detector, approved on Oct 25: resets its review clock
    review = s.gate(FRAUD, None, at(25, 9, 0), approvals=1)
    s.decide(review, "gustav", at(25, 10, 0), "approve", "approved")
    return s
