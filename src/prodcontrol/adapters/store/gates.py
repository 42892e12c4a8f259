"""Gates and their decisions, waivers, and the actions decisions lead to.

A decision is a compare-and-set on the gate's ``version``: Slack, the CLI and the web page can
all answer the same gate at the same moment, and exactly one of two racing answers applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import or_, select, update

from prodcontrol.adapters.store.base import StoreBase
from prodcontrol.adapters.store.events import insert_events
from prodcontrol.adapters.store.outbox import add_notification
from prodcontrol.adapters.store.tables import (
    ActionRow,
    DecisionRow,
    FindingRow,
    GateRow,
    WaiverRow,
)
from prodcontrol.adapters.store.transaction import WriteTx, lease, set_fields, to_record
from prodcontrol.clock import ensure_utc
from prodcontrol.evidence import store_rules as rules
from prodcontrol.evidence.records import (
    Action,
    ActionIn,
    ActionKind,
    ActionStatus,
    Decision,
    DecisionIn,
    DomainEventIn,
    Finding,
    Gate,
    GateIn,
    GateStatus,
    NotificationIn,
    Waiver,
    WaiverIn,
)


def insert_gate(tx: WriteTx, gate: GateIn, notifications: Sequence[NotificationIn] = ()) -> Gate:
    """Open a gate with its messages (a second pending finding gate for one model version is
    refused by ``uq_pc_gates_pending_finding``: StoreConflict)."""
    record = rules.new_gate(gate, tx.now)
    tx.insert(GateRow, record, "gate", "opened", record.model)
    for message in notifications:
        add_notification(tx, message, record.model, gate_id=record.id, finding_id=record.finding_id)
    return record


class GatesMixin(StoreBase):
    """Gates, decisions, waivers and actions."""

    def open_gate(self, gate: GateIn, notifications: Sequence[NotificationIn] = ()) -> Gate:
        with self._write() as tx:
            return insert_gate(tx, gate, notifications)

    def get_gate(self, gate_id: str) -> Gate:
        return self._record(GateRow, Gate, "gate", gate_id)

    def list_gates(self, status: GateStatus | None = None, model: str | None = None) -> list[Gate]:
        stmt = select(GateRow).order_by(GateRow.opened_at, GateRow.id)
        if status is not None:
            stmt = stmt.where(GateRow.status == status)
        if model is not None:
            stmt = stmt.where(GateRow.model == model)
        return self._records(stmt, Gate)

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
            already = tx.session.scalar(
                select(DecisionRow.id).where(
                    DecisionRow.gate_id == gate_id, DecisionRow.person == decision.person
                )
            )
            if already is not None:
                raise rules.decided_twice(decision.person, gate_id)
            gate = self._compare_and_set(tx, gate_id, expected_version, new_status)
            record = rules.new_decision(decision, gate_id, tx.now)
            tx.insert(DecisionRow, record, "decision", "recorded", gate.model)
            tx.log_record(gate, "gate", new_status or "updated", gate.model)
            if action is not None and new_status is not None:
                self._request(tx, gate, action)
            insert_events(tx, events)
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
            tx.log_record(gate, "gate", "expired", gate.model)
            if action is not None:
                self._request(tx, gate, action)
            insert_events(tx, events)
            return gate

    @staticmethod
    def _request(tx: WriteTx, gate: Gate, action: ActionIn) -> Action:
        record = rules.gate_action(gate, action, tx.now)
        return tx.insert(ActionRow, record, "action", "requested", record.model)

    def _compare_and_set(
        self, tx: WriteTx, gate_id: str, expected_version: int, new_status: GateStatus | None
    ) -> Gate:
        """Bump the version (and close the gate) only if it is pending at the expected version."""
        values: dict[str, object] = {"version": GateRow.version + 1}
        if new_status is not None:
            values |= {"status": new_status, "decided_at": tx.now}
        result = tx.session.execute(
            update(GateRow)
            .where(
                GateRow.id == gate_id,
                GateRow.version == expected_version,
                GateRow.status == "pending",
            )
            .values(values)
            .execution_options(synchronize_session=False)
        )
        row = self._get(tx.session, GateRow, "gate", gate_id)
        if getattr(result, "rowcount", 0) != 1:
            raise rules.gate_refusal(gate_id, expected_version, row.version, row.status)
        return to_record(row, Gate)

    def decisions_for(self, gate_id: str) -> list[Decision]:
        stmt = (
            select(DecisionRow)
            .where(DecisionRow.gate_id == gate_id)
            .order_by(DecisionRow.decided_at, DecisionRow.id)
        )
        return self._records(stmt, Decision)

    # ------------------------------------------------------------------ waivers

    def grant_waiver(self, waiver: WaiverIn) -> Waiver:
        with self._write() as tx:
            finding = self._get(tx.session, FindingRow, "finding", waiver.finding_id)
            rules.check_waiver_names(to_record(finding, Finding), waiver)
            record = rules.new_waiver(waiver, tx.now)
            tx.insert(WaiverRow, record, "waiver", "granted", record.model)
            if finding.status == "open":
                self._set_finding(tx, finding, "waived", f"waiver {record.id}")
            return record

    def revoke_waiver(self, waiver_id: str, by: str, reason: str) -> Waiver:
        with self._write() as tx:
            row = self._get(tx.session, WaiverRow, "waiver", waiver_id)
            if row.revoked_at is not None:
                return to_record(row, Waiver)
            row.revoked_at, row.revoked_by = tx.now, by
            tx.session.flush()
            record = to_record(row, Waiver)
            tx.log_record(record, "waiver", "revoked", record.model, reason=reason)
            finding = self._get(tx.session, FindingRow, "finding", row.finding_id)
            if finding.status == "waived" and not self._still_waived(tx, finding.id):
                self._set_finding(tx, finding, "open", f"waiver {waiver_id} revoked: {reason}")
            return record

    @staticmethod
    def _still_waived(tx: WriteTx, finding_id: str) -> bool:
        other = tx.session.scalar(
            select(WaiverRow.id)
            .where(
                WaiverRow.finding_id == finding_id,
                WaiverRow.revoked_at.is_(None),
                WaiverRow.expires_at > tx.now,
            )
            .limit(1)
        )
        return other is not None

    @staticmethod
    def _set_finding(tx: WriteTx, row: FindingRow, status: str, reason: str) -> None:
        row.status = status
        tx.session.flush()
        record = to_record(row, Finding)
        tx.log_record(record, "finding", status, record.model, reason=reason)

    def list_waivers(
        self, model: str | None = None, active_at: datetime | None = None
    ) -> list[Waiver]:
        stmt = select(WaiverRow).order_by(WaiverRow.granted_at, WaiverRow.id)
        if model is not None:
            stmt = stmt.where(WaiverRow.model == model)
        if active_at is not None:
            when = ensure_utc(active_at)
            stmt = stmt.where(
                WaiverRow.granted_at <= when,
                WaiverRow.expires_at > when,
                or_(WaiverRow.revoked_at.is_(None), WaiverRow.revoked_at > when),
            )
        return self._records(stmt, Waiver)

    # ------------------------------------------------------------------ actions

    def record_action(self, action: ActionIn) -> Action:
        with self._write() as tx:
            record = rules.new_action(action, tx.now)
            return tx.insert(ActionRow, record, "action", action.status, record.model)

    def claim_actions(
        self, now: datetime, *, gate_id: str | None = None, lease_seconds: float = 300.0
    ) -> list[Action]:
        when = ensure_utc(now)
        with self._write() as tx:
            stmt = (
                select(ActionRow)
                .where(
                    ActionRow.status.in_(("requested", "applying")),
                    ActionRow.next_attempt_at <= when,
                )
                .order_by(ActionRow.created_at, ActionRow.id)
            )
            if gate_id is not None:
                stmt = stmt.where(ActionRow.gate_id == gate_id)
            return lease(tx, stmt, Action, "action", tx.now + timedelta(seconds=lease_seconds))

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
            row = self._get(tx.session, ActionRow, "action", action_id)
            changes = rules.settled_action(
                to_record(row, Action),
                status,
                result,
                tx.now,
                model_version=model_version,
                retry_at=retry_at,
                action=action,
                params=params,
            )
            set_fields(row, changes)
            tx.session.flush()
            record = to_record(row, Action)
            tx.log_record(record, "action", status, record.model)
            return record

    def list_actions(self, model: str | None = None) -> list[Action]:
        stmt = select(ActionRow).order_by(ActionRow.created_at, ActionRow.id)
        if model is not None:
            stmt = stmt.where(ActionRow.model == model)
        return self._records(stmt, Action)
