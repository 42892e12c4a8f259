"""Gates, decisions, domain events, waivers and actions of the in-memory store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from prodcontrol.clock import ensure_utc
from prodcontrol.errors import StoreConflict
from prodcontrol.evidence import store_rules as rules
from prodcontrol.evidence.records import (
    Action,
    ActionIn,
    ActionKind,
    ActionStatus,
    Decision,
    DecisionIn,
    DomainEvent,
    DomainEventIn,
    DomainEventStatus,
    Finding,
    FindingStatus,
    Gate,
    GateIn,
    GateStatus,
    NotificationIn,
    Waiver,
    WaiverIn,
)
from prodcontrol.testing.store_base import _stored, _Tx
from prodcontrol.testing.store_outbox import OutboxPart


class GatesPart(OutboxPart):
    """Gates and what decides them."""

    # ------------------------------------------------------------------ gates

    def _pending_finding_gate(self, model: str, model_version: str) -> Gate | None:
        return next(
            (
                g
                for g in self._rows["gate"].values()
                if (g.model, g.model_version, g.kind, g.status)
                == (model, model_version, "finding", "pending")
            ),
            None,
        )

    def _insert_gate(
        self, tx: _Tx, gate: GateIn, notifications: Sequence[NotificationIn] = ()
    ) -> Gate:
        if gate.kind == "finding" and self._pending_finding_gate(gate.model, gate.model_version):
            raise StoreConflict(
                "the evidence store refused the write: uq_pc_gates_pending_finding (a pending "
                f"finding gate for {gate.model} version {gate.model_version} exists)"
            )
        record = tx.insert("gate", rules.new_gate(gate, tx.now), "opened", gate.model)
        for message in notifications:
            self._add_notification(
                tx, message, record.model, gate_id=record.id, finding_id=record.finding_id
            )
        return record

    def open_gate(self, gate: GateIn, notifications: Sequence[NotificationIn] = ()) -> Gate:
        with self._write() as tx:
            return self._insert_gate(tx, gate, notifications)

    def get_gate(self, gate_id: str) -> Gate:
        with self._lock:
            gate: Gate = self._get("gate", "gate", gate_id)
            return gate

    def list_gates(self, status: GateStatus | None = None, model: str | None = None) -> list[Gate]:
        gates: list[Gate] = self._all("gate")
        return sorted(
            (
                g
                for g in gates
                if (status is None or g.status == status) and (model is None or g.model == model)
            ),
            key=lambda g: (g.opened_at, g.id),
        )

    def record_decision(
        self,
        gate_id: str,
        decision: DecisionIn,
        expected_version: int,
        new_status: Literal["approved", "rejected"] | None,
        *,
        action: ActionIn | None = None,
        events: Sequence[DomainEventIn] = (),
    ) -> Gate:
        with self._write() as tx:
            if any(
                d.gate_id == gate_id and d.person == decision.person
                for d in self._rows["decision"].values()
            ):
                raise rules.decided_twice(decision.person, gate_id)
            gate = self._compare_and_set(tx, gate_id, expected_version, new_status)
            tx.insert(
                "decision", rules.new_decision(decision, gate_id, tx.now), "recorded", gate.model
            )
            tx.log(gate, "gate", new_status or "updated", gate.model)
            if action is not None and new_status is not None:
                self._request(tx, gate, action)
            self._insert_events(tx, events)
            return gate

    def expire_gate(
        self,
        gate_id: str,
        expected_version: int,
        *,
        action: ActionIn | None = None,
        events: Sequence[DomainEventIn] = (),
    ) -> Gate:
        with self._write() as tx:
            gate = self._compare_and_set(tx, gate_id, expected_version, "expired")
            tx.log(gate, "gate", "expired", gate.model)
            if action is not None:
                self._request(tx, gate, action)
            self._insert_events(tx, events)
            return gate

    @staticmethod
    def _request(tx: _Tx, gate: Gate, action: ActionIn) -> Action:
        record = rules.gate_action(gate, action, tx.now)
        return tx.insert("action", record, "requested", record.model)

    def _compare_and_set(
        self, tx: _Tx, gate_id: str, expected_version: int, new_status: GateStatus | None
    ) -> Gate:
        """Bump the version (and close the gate) only if it is pending at the expected version."""
        row: Gate = self._get("gate", "gate", gate_id)
        if row.version != expected_version or row.status != "pending":
            raise rules.gate_refusal(gate_id, expected_version, row.version, row.status)
        update: dict[str, Any] = {"version": row.version + 1}
        if new_status is not None:
            update |= {"status": new_status, "decided_at": tx.now}
        changed = _stored(row.model_copy(update=update))
        self._rows["gate"][gate_id] = changed
        return changed

    def decisions_for(self, gate_id: str) -> list[Decision]:
        decisions: list[Decision] = self._all("decision")
        return sorted(
            (d for d in decisions if d.gate_id == gate_id), key=lambda d: (d.decided_at, d.id)
        )

    # ------------------------------------------------------------------ domain events

    def _insert_events(self, tx: _Tx, events: Sequence[DomainEventIn]) -> None:
        for event in events:
            if any(e.key == event.key for e in self._rows["domain_event"].values()):
                raise StoreConflict(
                    f"the evidence store refused the write: uq_pc_domain_events_key ({event.key})"
                )
            tx.insert("domain_event", rules.new_domain_event(event, tx.now), "queued", event.model)

    def claim_domain_events(
        self,
        now: datetime,
        *,
        gate_id: str | None = None,
        limit: int = 100,
        lease_seconds: float = 60.0,
    ) -> list[DomainEvent]:
        when = ensure_utc(now)
        with self._write() as tx:
            due = self._due("domain_event", ("pending", "applying"), when, gate_id)
            until = when + timedelta(seconds=lease_seconds)
            return self._lease(tx, "domain_event", due[: max(0, limit)], until)

    def settle_domain_event(
        self,
        event_id: str,
        status: DomainEventStatus,
        result: dict[str, Any],
        *,
        retry_at: datetime | None = None,
    ) -> DomainEvent:
        with self._write() as tx:
            row: DomainEvent = self._get("domain_event", "domain event", event_id)
            changes = rules.settled_domain_event(row, status, result, tx.now, retry_at=retry_at)
            settled = row.model_copy(update=changes)
            return tx.update("domain_event", settled, status, settled.model)

    def _due(
        self, subject: str, statuses: tuple[str, ...], when: datetime, gate_id: str | None
    ) -> list[Any]:
        """Actions or domain events in ``statuses`` due at ``when`` (a lease that ran out is
        due again), oldest first: what the SQL store's claim selects."""
        return sorted(
            (
                r
                for r in self._rows[subject].values()
                if r.status in statuses
                and r.next_attempt_at is not None
                and r.next_attempt_at <= when
                and (gate_id is None or r.gate_id == gate_id)
            ),
            key=lambda r: (r.created_at, r.id),
        )

    @staticmethod
    def _lease(
        tx: _Tx, subject: str, due: Sequence[Action | DomainEvent], until: datetime
    ) -> list[Any]:
        return [
            tx.update(subject, r.model_copy(update=rules.leased(until)), "applying", r.model)
            for r in due
        ]

    def list_domain_events(
        self, status: DomainEventStatus | None = None, gate_id: str | None = None
    ) -> list[DomainEvent]:
        events: list[DomainEvent] = self._all("domain_event")
        return sorted(
            (
                e
                for e in events
                if (status is None or e.status == status)
                and (gate_id is None or e.gate_id == gate_id)
            ),
            key=lambda e: (e.created_at, e.id),
        )

    # ------------------------------------------------------------------ waivers

    def grant_waiver(self, waiver: WaiverIn) -> Waiver:
        with self._write() as tx:
            finding: Finding = self._get("finding", "finding", waiver.finding_id)
            rules.check_waiver_names(finding, waiver)
            record = tx.insert("waiver", rules.new_waiver(waiver, tx.now), "granted", waiver.model)
            if finding.status == "open":
                self._set_finding(tx, finding, "waived", f"waiver {record.id}")
            return record

    def revoke_waiver(self, waiver_id: str, by: str, reason: str) -> Waiver:
        with self._write() as tx:
            row: Waiver = self._get("waiver", "waiver", waiver_id)
            if row.revoked_at is not None:
                return row
            revoked = row.model_copy(update={"revoked_at": tx.now, "revoked_by": by})
            revoked = tx.update("waiver", revoked, "revoked", revoked.model, reason=reason)
            finding: Finding = self._get("finding", "finding", row.finding_id)
            if finding.status == "waived" and not self._still_waived(tx, finding.id):
                self._set_finding(tx, finding, "open", f"waiver {waiver_id} revoked: {reason}")
            return revoked

    def _still_waived(self, tx: _Tx, finding_id: str) -> bool:
        return any(
            w.finding_id == finding_id and w.revoked_at is None and w.expires_at > tx.now
            for w in self._rows["waiver"].values()
        )

    @staticmethod
    def _set_finding(tx: _Tx, row: Finding, status: FindingStatus, reason: str) -> None:
        changed = row.model_copy(update={"status": status})
        tx.update("finding", changed, status, changed.model, reason=reason)

    def list_waivers(
        self, model: str | None = None, active_at: datetime | None = None
    ) -> list[Waiver]:
        when = ensure_utc(active_at) if active_at is not None else None
        waivers: list[Waiver] = self._all("waiver")
        return sorted(
            (
                w
                for w in waivers
                if (model is None or w.model == model)
                and (
                    when is None
                    or (
                        w.granted_at <= when
                        and w.expires_at > when
                        and (w.revoked_at is None or w.revoked_at > when)
                    )
                )
            ),
            key=lambda w: (w.granted_at, w.id),
        )

    # ------------------------------------------------------------------ actions

    def record_action(self, action: ActionIn) -> Action:
        with self._write() as tx:
            record = rules.new_action(action, tx.now)
            return tx.insert("action", record, action.status, record.model)

    def claim_actions(
        self, now: datetime, *, gate_id: str | None = None, lease_seconds: float = 300.0
    ) -> list[Action]:
        when = ensure_utc(now)
        with self._write() as tx:
            due: list[Action] = self._due("action", ("requested", "applying"), when, gate_id)
            return self._lease(tx, "action", due, tx.now + timedelta(seconds=lease_seconds))

    def settle_action(
        self,
        action_id: str,
        status: ActionStatus,
        result: dict[str, Any],
        *,
        model_version: str | None = None,
        retry_at: datetime | None = None,
        action: ActionKind | None = None,
        params: dict[str, Any] | None = None,
    ) -> Action:
        with self._write() as tx:
            row: Action = self._get("action", "action", action_id)
            changes = rules.settled_action(
                row,
                status,
                result,
                tx.now,
                model_version=model_version,
                retry_at=retry_at,
                action=action,
                params=params,
            )
            settled = row.model_copy(update=changes)
            return tx.update("action", settled, status, settled.model)

    def list_actions(self, model: str | None = None) -> list[Action]:
        actions: list[Action] = self._all("action")
        return sorted(
            (a for a in actions if model is None or a.model == model),
            key=lambda a: (a.created_at, a.id),
        )
