"""Pure rules of one-run-one-decision: worst first, gate coverage, chain groups, the message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prodcontrol.control.escalation.messages import (
    MAX_CONTROL_LINES,
    ControlFacts,
    MessageFacts,
    escalation_message,
    plain_text,
)
from prodcontrol.control.runs import finding_groups as groups
from prodcontrol.evidence.records import Finding, Gate

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def finding(
    fid: str,
    control: str,
    verdict: str = "fail",
    *,
    run: str = "r1",
    blocking: bool = True,
    severity: str = "high",
    at: datetime = T0,
) -> Finding:
    return Finding(
        id=fid,
        run_id=run,
        verdict_id=f"v-{fid}",
        model="m",
        model_version="2",
        control_id=control,
        verdict=verdict,  # type: ignore[arg-type]
        severity=severity,
        blocking=blocking,
        status="open",
        opened_at=at,
    )


def gate(
    gid: str, lead: str, ids: list[str], *, at: datetime, decided: datetime | None = None
) -> Gate:
    return Gate(
        id=gid,
        finding_id=lead,
        model="m",
        model_version="2",
        kind="finding",
        right="escalation_outcome",
        required_approvals=1,
        on_approve="accept",
        on_reject="rollback",
        context={"findings": ids},
        status="pending" if decided is None else "approved",
        opened_at=at,
        decided_at=decided,
        version=1,
    )


def test_worst_first_puts_blocking_then_fail_then_severity() -> None:
    found = [
        finding("a", "dq-out-of-range", "warn"),
        finding("b", "dataset-drift", "fail", severity="medium"),
        finding("c", "prediction-drift", "fail"),
        finding("d", "value-capture", "fail", blocking=False),
    ]
    assert [f.id for f in groups.worst_first(found)] == ["c", "b", "a", "d"]


def test_a_gate_covers_its_listed_findings_and_later_runs_while_pending() -> None:
    run1 = [finding("a", "x"), finding("b", "y")]
    later = T0 + timedelta(minutes=5)
    run2 = [
        finding("c", "x", run="r2", at=later),
        finding("d", "z", run="r2", at=later, blocking=False),
    ]
    pending = gate("g", "a", ["a", "b"], at=T0)
    mapping = groups.gates_by_finding([pending], run1 + run2)
    assert {k: v.id for k, v in mapping.items()} == {"a": "g", "b": "g", "c": "g"}
    chains = groups.chain_groups(run1 + run2, [pending])
    assert list(chains) == ["gate:g"]  # d rides on its run's gate chain
    assert [f.id for f in chains["gate:g"][1]] == ["a", "c", "b", "d"]  # x before y

    closed = gate("g", "a", ["a", "b"], at=T0, decided=T0 + timedelta(minutes=1))
    assert "c" not in groups.gates_by_finding([closed], run1 + run2)
    assert set(groups.chain_groups(run1 + run2, [closed])) == {"gate:g", "run:r2"}


def test_without_a_gate_a_run_is_one_chain() -> None:
    found = [finding("a", "x", "warn", blocking=False), finding("b", "y", "fail", blocking=False)]
    chains = groups.chain_groups(found, [])
    assert list(chains) == ["run:r1"]
    assert chains["run:r1"][0] is None


def facts(n: int) -> MessageFacts:
    controls = [
        ControlFacts(control_id=f"control-{i}", verdict="fail", value=0.5 + i, warn=0.1, fail=0.3)
        for i in range(n)
    ]
    return MessageFacts(
        model="m",
        model_version="2",
        tier="high",
        stage="production",
        control_id="control-0",
        verdict="fail",
        since=T0,
        finding_id="a",
        gate_id="g",
        controls=controls,
    )


def test_the_message_lists_every_control_worst_first_capped_for_slack() -> None:
    text, blocks = escalation_message(facts(3), ["approve", "reject", "acknowledge"])
    assert text == "m v2 (high tier, production): 3 controls failing, worst control-0 FAIL"
    rendered = plain_text(text, blocks)
    assert [line.split()[0] for line in rendered.splitlines() if "thresholds" in line] == [
        "control-0",
        "control-1",
        "control-2",
    ]
    assert "measured 1.5; thresholds: warn above 0.1, fail above 0.3" in rendered
    assert "[Approve] [Reject] [Acknowledge]" in rendered

    text, blocks = escalation_message(facts(MAX_CONTROL_LINES + 3), ["acknowledge"])
    rendered = plain_text(text, blocks)
    assert sum("thresholds" in line for line in rendered.splitlines()) == MAX_CONTROL_LINES
    assert "and 3 more" in rendered
    assert len(blocks) <= 50 and all(len(str(b)) < 3500 for b in blocks)


def test_an_error_in_a_message_says_why_it_has_no_value() -> None:
    """Every channel shows the error's reason, not "measured no value"."""
    why = "could not load the current data: no such file /data/scores.parquet"
    many = facts(2).model_copy(
        update={
            "controls": [
                ControlFacts(control_id="dataset-drift", verdict="error", reason=why),
                ControlFacts(control_id="control-1", verdict="fail", value=0.5, fail=0.3),
            ]
        }
    )
    rendered = plain_text(*escalation_message(many, ["acknowledge"]))
    assert f"dataset-drift ERROR: could not be measured: {why}" in rendered
    assert "no value" not in rendered
    one = facts(1).model_copy(
        update={"controls": [], "verdict": "error", "value": None, "reason": why}
    )
    rendered = plain_text(*escalation_message(one, ["acknowledge"]))
    assert f"could not be measured: {why}" in rendered and "no value" not in rendered
