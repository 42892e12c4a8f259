"""One control run, one decision: one gate, one chain, one message per recipient per step."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from slack_helpers import make_runtime

from prodcontrol.control.escalation import escalation
from prodcontrol.control.escalation.messages import plain_text
from prodcontrol.control.gates import decisions, waivers
from prodcontrol.evidence.records import Finding, FindingIn, Notification, VerdictIn
from prodcontrol.orchestration.flows import open_gates
from prodcontrol.runtime import Runtime
from prodcontrol.testing import ManualClock

MODEL = "credit-limit-regressor"  # medium: single gate; emeka at once, dana after 4h
CONTROLS = {  # control -> (kind, verdict, value, warn, fail)
    "dq-out-of-range": ("data_quality", "warn", 0.05, 0.02, 0.1),
    "dataset-drift": ("drift", "fail", 0.42, 0.1, 0.3),
    "prediction-drift": ("drift", "fail", 0.61, 0.1, 0.2),
}


def bad_run(rt: Runtime, controls: dict[str, tuple[str, str, float, float, float]]) -> str:
    """A recorded run of MODEL v3 whose controls all yield blocking findings."""
    entry = rt.config.model(MODEL)
    run = rt.store.start_run(MODEL, "3", entry.tier, "cli", flow_run_id="flow-123")
    rt.store.finish_run(
        run.id,
        "failed",
        verdicts=[
            VerdictIn(
                control_id=control,
                kind=kind,
                verdict=verdict,  # type: ignore[arg-type]
                value=value,
                warn=warn,
                fail=fail,
                direction="higher_is_worse",
                reason=f"{value} crosses its threshold",
            )
            for control, (kind, verdict, value, warn, fail) in controls.items()
        ],
        artifacts=[],
        findings=[FindingIn(control_id=c, severity="high", blocking=True) for c in controls],
    )
    return run.id


def findings_of(rt: Runtime, run_id: str) -> list[Finding]:
    return [f for f in rt.store.list_findings(model=MODEL) if f.run_id == run_id]


def escalation_notes(rt: Runtime) -> list[Notification]:
    return [n for n in rt.store.list_notifications() if n.payload.get("kind") == "escalation"]


def runtime(tmp_path: Path, url: str) -> tuple[Runtime, ManualClock]:
    clock = ManualClock()
    return make_runtime(tmp_path, url, clock), clock


def test_one_run_three_findings_one_gate_one_chain_one_message_per_recipient(
    tmp_path: Path, database_url: str
) -> None:
    rt, clock = runtime(tmp_path, database_url)
    run_id = bad_run(rt, CONTROLS)
    escalation.after_run(rt, run_id)  # the runner starts escalations before gates open
    [gate_id] = open_gates(rt, MODEL, run_id, "flow-123")
    assert open_gates(rt, MODEL, run_id, "flow-123") == [gate_id]  # a re-run adopts it
    escalation.after_run(rt, run_id)

    [gate] = rt.store.list_gates(model=MODEL)
    found = {f.id: f.control_id for f in findings_of(rt, run_id)}
    assert set(gate.context["findings"]) == set(found)  # type: ignore[arg-type]
    assert gate.context["controls"] == ["dataset-drift", "prediction-drift", "dq-out-of-range"]
    assert found[gate.finding_id or ""] == "dataset-drift"  # worst first (fail, then by id)
    [chain] = rt.store.list_escalations()
    assert chain.finding_id == gate.finding_id

    [first] = escalation_notes(rt)  # step 0 of medium: emeka only
    assert first.recipient == "emeka"
    text = plain_text(str(first.payload["text"]), list(first.payload["blocks"]))
    assert "3 controls failing, worst dataset-drift FAIL" in text
    lines = [line for line in text.splitlines() if "thresholds" in line]
    assert [line.split()[0] for line in lines] == [
        "dataset-drift",
        "prediction-drift",
        "dq-out-of-range",
    ]
    assert "FAIL: measured 0.42 share of columns; thresholds: warn above 0.1" in lines[0]
    assert "fail above 0.3 share of columns" in lines[0]

    clock.advance(timedelta(hours=4))
    result = escalation.tick(rt)
    assert (result.started, result.advanced) == (0, 1)
    notes = escalation_notes(rt)
    assert sorted(n.recipient for n in notes) == ["dana", "emeka"]  # one per recipient per step
    second = next(n for n in notes if n.recipient == "dana")
    assert second.payload["controls"] == ["dataset-drift", "prediction-drift", "dq-out-of-range"]
    assert "prodcontrol_approve" in str(second.payload["blocks"])  # the gate exists by now


def test_the_gate_decision_applies_one_action_and_settles_every_finding(
    tmp_path: Path, sqlite_url: str
) -> None:
    rt, _ = runtime(tmp_path, sqlite_url)
    run_id = bad_run(rt, CONTROLS)
    escalation.after_run(rt, run_id)
    [gate_id] = open_gates(rt, MODEL, run_id, None)
    decided = decisions.decide(
        rt, gate_id, person="emeka", decision="approve", channel="cli", reason="test reason"
    )
    assert decided.status == "approved"
    assert {f.status for f in findings_of(rt, run_id)} == {"closed"}
    assert [a.action for a in rt.store.list_actions(MODEL)] == ["accept"]
    assert [e.status for e in rt.store.list_escalations()] == ["resolved"]

    run2 = bad_run(rt, CONTROLS)  # same version, the gate is closed now: a new gate
    [gate2] = open_gates(rt, MODEL, run2, None)
    assert gate2 != gate_id
    escalation.after_run(rt, run2)
    rejected = decisions.decide(
        rt, gate2, person="dana", decision="reject", channel="cli", reason="test reason"
    )
    assert rejected.status == "rejected"
    actions = [a for a in rt.store.list_actions(MODEL) if a.gate_id == gate2]
    # once, not once per finding: no earlier approved version, so the queued rollback is
    # carried out as a suspend (its row says so, and why)
    assert [(a.action, a.status) for a in actions] == [("suspend", "applied")]
    assert "no earlier version" in actions[0].params["reason"]
    assert len(rt.store.list_escalations()) == 2


def test_crash_safety_tick_starts_exactly_one_chain_per_run(
    tmp_path: Path, sqlite_url: str
) -> None:
    rt, _ = runtime(tmp_path, sqlite_url)
    bad_run(rt, CONTROLS)  # the runner died before after_run and before the gate
    assert escalation.tick(rt).started == 1
    assert escalation.tick(rt).started == 0
    assert len(escalation_notes(rt)) == 1

    run2 = bad_run(rt, CONTROLS)  # this time the gate opened, but no chain was started
    [gate_id] = open_gates(rt, MODEL, run2, None)
    assert escalation.tick(rt).started == 1
    assert escalation.tick(rt).started == 0
    chains = [
        e
        for e in rt.store.list_escalations()
        if e.finding_id
        in set(
            rt.store.get_gate(gate_id).context["findings"]  # type: ignore[arg-type]
        )
    ]
    assert [c.gate_id for c in chains] == [gate_id]
    assert len(escalation_notes(rt)) == 2


def test_a_second_run_of_the_version_adopts_the_pending_gate(
    tmp_path: Path, database_url: str
) -> None:
    rt, clock = runtime(tmp_path, database_url)
    run1 = bad_run(rt, CONTROLS)
    escalation.after_run(rt, run1)
    [gate_id] = open_gates(rt, MODEL, run1, None)

    clock.advance(timedelta(minutes=30))
    later = {"dataset-drift": CONTROLS["dataset-drift"], "dq-schema": CONTROLS["dq-out-of-range"]}
    run2 = bad_run(rt, later)
    escalation.after_run(rt, run2)
    assert open_gates(rt, MODEL, run2, None) == [gate_id]
    assert len(rt.store.list_gates(model=MODEL)) == 1
    assert len(rt.store.list_escalations()) == 1
    assert escalation.tick(rt).started == 0
    gate = rt.store.get_gate(gate_id)
    covered = decisions.covered_findings(rt, gate)
    assert len(covered) == 5

    decisions.decide(
        rt, gate_id, person="emeka", decision="approve", channel="cli", reason="test reason"
    )
    assert {f.status for f in rt.store.list_findings(model=MODEL)} == {"closed"}
    assert [a.action for a in rt.store.list_actions(MODEL)] == ["accept"]


def test_a_waiver_approves_the_gate_only_when_every_covered_finding_is_waived(
    tmp_path: Path, sqlite_url: str
) -> None:
    rt, _ = runtime(tmp_path, sqlite_url)
    two = {c: CONTROLS[c] for c in ("dataset-drift", "dq-out-of-range")}
    run_id = bad_run(rt, two)
    escalation.after_run(rt, run_id)
    [gate_id] = open_gates(rt, MODEL, run_id, None)
    first, second = findings_of(rt, run_id)
    why = "known seasonal shift; retraining is scheduled"
    waivers.grant(rt, first.id, approver="dana", reason=why, valid_for=timedelta(days=7))
    assert rt.store.get_gate(gate_id).status == "pending"  # the other finding needs a decision
    waivers.grant(rt, second.id, approver="dana", reason=why, valid_for=timedelta(days=7))
    assert rt.store.get_gate(gate_id).status == "approved"
    assert {f.status for f in findings_of(rt, run_id)} == {"waived"}
    assert [a.action for a in rt.store.list_actions(MODEL) if a.gate_id == gate_id] == ["accept"]


def test_a_value_finding_in_the_run_puts_the_business_owner_first_in_the_one_chain(
    tmp_path: Path, sqlite_url: str
) -> None:
    rt, _ = runtime(tmp_path, sqlite_url)
    with_value = dict(CONTROLS) | {"value-capture": ("value", "fail", 0.5, 0.1, 0.2)}
    run_id = bad_run(rt, with_value)
    escalation.after_run(rt, run_id)
    assert len(rt.store.list_escalations()) == 1
    notes = escalation_notes(rt)
    assert sorted(n.recipient for n in notes) == ["emeka", "hana"]  # both at once, one each
    assert all(len(n.payload["controls"]) == 4 for n in notes)  # type: ignore[arg-type]
