"""Builders for the records the store tests write (a unique module name: tests have no packages)."""

from __future__ import annotations

from datetime import UTC, datetime

from prodcontrol.evidence import (
    ArtifactIn,
    ControlRun,
    FindingIn,
    GateIn,
    NotificationIn,
    VerdictIn,
)
from prodcontrol.evidence.port import EvidenceStore

SHA = "ab" * 32
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def verdict(control_id: str, result: str = "pass", value: float | None = 0.1) -> VerdictIn:
    return VerdictIn(
        control_id=control_id,
        kind="drift",
        verdict=result,
        value=value,
        warn=0.2,
        fail=0.4,
        direction="higher_is_worse",
        reason=f"{control_id} is {result}",
        details={"columns": ["a", "b"], "share": value},
    )


def artifact(name: str, control_id: str | None = None) -> ArtifactIn:
    return ArtifactIn(
        name=name,
        media_type="application/json",
        path=f"/tmp/{name}",
        sha256=SHA,
        size_bytes=123,
        control_id=control_id,
    )


def message(key: str, **links: str | None) -> NotificationIn:
    return NotificationIn(
        idempotency_key=key,
        recipient_kind="person",
        recipient="U123",
        payload={"text": f"message {key}"},
        **links,
    )  # type: ignore[arg-type]


def finished_run(
    store: EvidenceStore, model: str = "credit-risk", failing: str = "drift_psi"
) -> ControlRun:
    """A run with one passing and one failing control, a finding and a message for it."""
    run = store.start_run(model, "7", "high", "cli")
    return store.finish_run(
        run.id,
        "failed",
        verdicts=[verdict("quality_nulls"), verdict(failing, "fail", 0.5)],
        artifacts=[artifact("drift.json", failing), artifact("summary.html")],
        findings=[FindingIn(control_id=failing, severity="high", blocking=True)],
        notifications=[message(f"{run.id}:{failing}", control_id=failing)],
    )


def gate_for(
    model: str = "credit-risk", approvals: int = 1, finding_id: str | None = None
) -> GateIn:
    return GateIn(
        finding_id=finding_id,
        model=model,
        model_version="7",
        kind="finding",
        right="escalation_outcome",
        required_approvals=approvals,
        requested_by="alice",
        on_approve="accept",
        on_reject="rollback",
        on_timeout="suspend",
        context={"control": "drift_psi"},
    )
