"""Look-ups the escalation ticker needs without scanning every row (SQLite and PostgreSQL)."""

from __future__ import annotations

from store_helpers import finished_run, gate_for, message

from prodcontrol.evidence import EscalationIn
from prodcontrol.evidence.port import EvidenceStore


def test_escalations_for_findings(store: EvidenceStore) -> None:
    finished_run(store, model="credit-risk")
    finished_run(store, model="fraud")
    [f1] = store.list_findings(model="credit-risk")
    [f2] = store.list_findings(model="fraud")
    e1 = store.start_escalation(EscalationIn(finding_id=f1.id, model="credit-risk", tier="high"))
    e2 = store.start_escalation(EscalationIn(finding_id=f2.id, model="fraud", tier="high"))
    store.acknowledge_escalation(e2.id, "dana")
    assert [e.id for e in store.escalations_for_findings([f1.id])] == [e1.id]
    assert [e.id for e in store.escalations_for_findings([f2.id, f1.id, f1.id])] == [e1.id, e2.id]
    assert store.escalations_for_findings([]) == []
    assert store.escalations_for_findings(["no-such-finding"]) == []


def test_notifications_about_a_finding_or_a_gate(store: EvidenceStore) -> None:
    finished_run(store, model="credit-risk")
    [finding] = store.list_findings(model="credit-risk")
    gate = store.open_gate(gate_for(finding_id=finding.id), [message("gate-msg")])
    store.enqueue([message("other")])
    by_finding = store.notifications_about(finding_id=finding.id)
    by_gate = store.notifications_about(gate_id=gate.id)
    both = store.notifications_about(finding_id=finding.id, gate_id=gate.id)
    assert {n.idempotency_key for n in by_gate} == {"gate-msg"}
    assert "other" not in {n.idempotency_key for n in both}
    assert {n.idempotency_key for n in by_finding} | {"gate-msg"} == {
        n.idempotency_key for n in both
    }
    assert store.notifications_about() == []
