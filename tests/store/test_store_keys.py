"""The keys the store holds for the loop (one pending gate per version, one chain per finding),
closing a run in one transaction, and signed heads: the same on every backend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from store_helpers import finished_run, gate_for, message, verdict

from prodcontrol.errors import StoreConflict, UsageError
from prodcontrol.evidence import EscalationIn, FindingIn
from prodcontrol.evidence.port import EvidenceStore, FirstStep, RunClosed
from prodcontrol.evidence.records import ControlRun, Finding, Gate, GateIn, Verdict
from prodcontrol.evidence.signatures import check_signatures
from prodcontrol.evidence.signing import SigningKey

FAIL = [FindingIn(control_id="drift_psi", severity="high", blocking=True)]


@dataclass
class OneGate:
    """A follow-up that opens (or joins) the version's gate and starts its chain."""

    chain: bool = True

    def gate(
        self, run: ControlRun, findings: Sequence[Finding], pending: Gate | None
    ) -> Gate | GateIn | None:
        if pending is not None:
            return pending
        return gate_for(finding_id=findings[0].id).model_copy(
            update={"model": run.model, "model_version": run.model_version}
        )

    def first_step(
        self,
        run: ControlRun,
        verdicts: Sequence[Verdict],
        findings: Sequence[Finding],
        gate: Gate | None,
    ) -> FirstStep | None:
        if not self.chain or gate is None:
            return None
        chain = EscalationIn(
            finding_id=gate.finding_id, gate_id=gate.id, model=run.model, tier=run.tier
        )
        return FirstStep(escalation=chain, notifications=[message(f"{run.id}:step-0")])


def close(store: EvidenceStore, follow_up: OneGate, control: str = "drift_psi") -> RunClosed:
    run = store.start_run("credit-risk", "7", "high", "cli")
    findings = [FindingIn(control_id=control, severity="high", blocking=True)]
    return store.close_run(
        run.id, "failed", [verdict(control, "fail", 0.5)], [], findings, follow_up=follow_up
    )


def test_close_run_writes_the_gate_and_its_first_step_and_a_later_run_joins(
    store: EvidenceStore,
) -> None:
    first = close(store, OneGate())
    assert first.gate is not None and first.escalation is not None and not first.joined
    [note] = store.list_notifications()
    assert (note.gate_id, note.escalation_id) == (first.gate.id, first.escalation.id)
    assert store.events()[-1].kind == "run.finished"

    later = close(store, OneGate(), control="quality_nulls")
    assert later.joined and later.gate is not None and later.gate.id == first.gate.id
    assert later.escalation is None  # the gate has its chain already
    gate = store.get_gate(first.gate.id)
    assert gate.context["controls"] == ["quality_nulls"]
    assert len(gate.context["findings"]) == 2
    assert len(store.list_escalations()) == 1 and store.verify().ok


def test_close_run_is_all_or_nothing(store: EvidenceStore) -> None:
    """A refused write in the follow-up (a second pending gate) rolls the run back too."""
    close(store, OneGate())
    head = store.chain_head()

    class SecondGate(OneGate):
        def gate(
            self, run: ControlRun, findings: Sequence[Finding], pending: Gate | None
        ) -> Gate | GateIn | None:
            return super().gate(run, findings, None)  # ignores the pending gate

    run = store.start_run("credit-risk", "7", "high", "cli")
    with pytest.raises(StoreConflict):
        store.close_run(
            run.id, "failed", [verdict("drift_psi", "fail", 0.5)], [], FAIL, follow_up=SecondGate()
        )
    assert store.get_run(run.id).status == "running"
    assert store.verdicts_for(run.id) == [] and len(store.list_gates()) == 1
    assert store.chain_head()[0] == head[0] + 1  # only run.started


def test_one_pending_finding_gate_per_model_version(store: EvidenceStore) -> None:
    first = store.open_gate(gate_for())
    with pytest.raises(StoreConflict):
        store.open_gate(gate_for())
    store.open_gate(gate_for().model_copy(update={"model_version": "8"}))
    store.open_gate(gate_for().model_copy(update={"kind": "promotion"}))
    store.expire_gate(first.id, first.version)
    store.open_gate(gate_for())  # the closed one no longer counts
    assert len(store.list_gates(status="pending")) == 3


def test_one_chain_per_lead_finding(store: EvidenceStore) -> None:
    finished_run(store)
    [finding] = store.list_findings()
    store.start_escalation(EscalationIn(finding_id=finding.id, model="credit-risk", tier="high"))
    head = store.chain_head()
    with pytest.raises(StoreConflict):
        store.start_escalation(
            EscalationIn(finding_id=finding.id, model="credit-risk", tier="high"),
            notifications=[message("second-chain")],
        )
    assert store.chain_head() == head and len(store.list_escalations()) == 1
    store.start_escalation(EscalationIn(model="credit-risk", tier="high"))  # no lead finding


def test_references_to_rows_that_do_not_exist_are_refused(store: EvidenceStore) -> None:
    with pytest.raises(StoreConflict):
        store.open_gate(gate_for(finding_id="no-such-finding"))
    with pytest.raises(StoreConflict):
        store.enqueue([message("m1", escalation_id="no-such-escalation")])
    assert store.list_gates() == [] and store.events() == []


def test_signed_heads_and_a_writer_without_the_key(store: EvidenceStore) -> None:
    key = SigningKey.generate()
    store.signer = key  # type: ignore[attr-defined]
    finished_run(store)
    store.record_event("decision.refused", "gate", "g1", None, {"person": "mallory"})
    events, head = store.events(), store.chain_head()
    assert [e.kind for e in events].count("evidence.key_added") == 1  # in the first commit
    report = check_signatures(events, store.head_signatures(), head, 0, [key.verify_key])
    assert report.state == "signed", report.problems
    assert len(store.head_signatures()) == 3  # one per commit: start, finish, the event

    store.signer = None  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="is signed"):
        store.record_event("x.y", "gate", "g1", None, {})
    store.signer = SigningKey.generate()  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="signed by key"):
        store.record_event("x.y", "gate", "g1", None, {})
    assert store.chain_head() == head and store.verify().ok
