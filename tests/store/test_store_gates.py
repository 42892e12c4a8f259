"""Gates: compare-and-set decisions (two racing approvals apply once), expiry, waivers, actions."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from store_helpers import finished_run, gate_for, message

from prodcontrol.errors import DecisionRefused, StoreConflict, UsageError
from prodcontrol.evidence import ActionIn, DecisionIn, Gate, WaiverIn
from prodcontrol.evidence.port import EvidenceStore


def approve(person: str, channel: str = "slack") -> DecisionIn:
    return DecisionIn(person=person, decision="approve", channel=channel, reason="looks fine")


def test_open_gate_with_its_messages(store: EvidenceStore) -> None:
    gate = store.open_gate(gate_for(), notifications=[message("g1"), message("g2")])
    assert (gate.status, gate.version, gate.required_approvals) == ("pending", 1, 1)
    assert store.get_gate(gate.id) == gate
    assert {n.gate_id for n in store.list_notifications()} == {gate.id}
    assert store.list_gates(status="pending", model="credit-risk") == [gate]
    assert store.list_gates(status="approved") == []


def test_two_person_rule_needs_two_distinct_decisions(store: EvidenceStore) -> None:
    gate = store.open_gate(gate_for(approvals=2))
    first = store.record_decision(gate.id, approve("bob"), gate.version, None)
    assert (first.status, first.version) == ("pending", 2)
    with pytest.raises(DecisionRefused, match="already decided"):
        store.record_decision(gate.id, approve("bob", "cli"), first.version, "approved")
    done = store.record_decision(gate.id, approve("carol", "cli"), first.version, "approved")
    assert (done.status, done.version) == ("approved", 3) and done.decided_at is not None
    assert [d.person for d in store.decisions_for(gate.id)] == ["bob", "carol"]


def test_a_stale_version_is_a_conflict_and_a_closed_gate_refuses(store: EvidenceStore) -> None:
    gate = store.open_gate(gate_for())
    store.record_decision(gate.id, approve("bob"), gate.version, "approved")
    with pytest.raises(StoreConflict, match="re-read"):
        store.record_decision(gate.id, approve("carol"), gate.version, "rejected")
    current = store.get_gate(gate.id)
    with pytest.raises(DecisionRefused, match="already approved"):
        store.record_decision(gate.id, approve("carol"), current.version, "rejected")
    assert len(store.decisions_for(gate.id)) == 1


def test_two_concurrent_approvals_apply_once(store: EvidenceStore) -> None:
    gate = store.open_gate(gate_for())
    barrier = threading.Barrier(2)
    results: dict[str, Gate | Exception] = {}

    def decide(person: str) -> None:
        barrier.wait()
        try:
            results[person] = store.record_decision(
                gate.id, approve(person), gate.version, "approved"
            )
        except (StoreConflict, DecisionRefused) as exc:
            results[person] = exc

    threads = [threading.Thread(target=decide, args=(p,)) for p in ("bob", "carol")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    won = [r for r in results.values() if isinstance(r, Gate)]
    lost = [r for r in results.values() if isinstance(r, StoreConflict)]
    assert len(won) == 1 and len(lost) == 1, results
    assert len(store.decisions_for(gate.id)) == 1
    assert store.get_gate(gate.id).version == 2
    assert store.verify().ok


def test_expire_gate_is_compare_and_set_too(store: EvidenceStore) -> None:
    gate = store.open_gate(gate_for())
    expired = store.expire_gate(gate.id, gate.version)
    assert expired.status == "expired" and expired.decided_at is not None
    with pytest.raises(StoreConflict):
        store.expire_gate(gate.id, gate.version)
    with pytest.raises(DecisionRefused):
        store.record_decision(gate.id, approve("bob"), expired.version, "approved")


def test_a_waiver_waives_its_finding_until_revoked(store: EvidenceStore) -> None:
    finished_run(store)
    [finding] = store.list_findings()
    expires = finding.opened_at + timedelta(days=7)
    waiver = store.grant_waiver(
        WaiverIn(
            finding_id=finding.id,
            model="credit-risk",
            control_id="drift_psi",
            reason="seasonal",
            approver="dave",
            expires_at=expires,
        )
    )
    assert store.get_finding(finding.id).status == "waived"
    assert store.list_waivers(model="credit-risk", active_at=waiver.granted_at) == [waiver]
    assert store.list_waivers(active_at=expires) == []
    assert waiver.active_at(waiver.granted_at) and not waiver.active_at(expires)

    revoked = store.revoke_waiver(waiver.id, by="erin", reason="drift is real")
    assert revoked.revoked_by == "erin" and revoked.revoked_at is not None
    assert store.revoke_waiver(waiver.id, by="erin", reason="again") == revoked
    assert store.get_finding(finding.id).status == "open"
    assert store.list_waivers(active_at=revoked.revoked_at) == []


def test_a_waiver_must_name_its_findings_control(store: EvidenceStore) -> None:
    finished_run(store)
    [finding] = store.list_findings()
    with pytest.raises(UsageError, match="waive the finding it names"):
        store.grant_waiver(
            WaiverIn(
                finding_id=finding.id,
                model="credit-risk",
                control_id="other",
                reason="x",
                approver="dave",
                expires_at=finding.opened_at + timedelta(days=1),
            )
        )


def test_actions_are_recorded(store: EvidenceStore) -> None:
    gate = store.open_gate(gate_for())
    action = store.record_action(
        ActionIn(
            gate_id=gate.id,
            model="credit-risk",
            model_version="7",
            action="rollback",
            params={"to_version": "6"},
            requested_by="system",
            status="applied",
            result={"alias": "champion"},
        )
    )
    assert store.list_actions(model="credit-risk") == [action]
    assert store.list_actions(model="other") == []
    assert store.events()[-1].kind == "action.applied"
