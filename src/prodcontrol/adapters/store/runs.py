"""Control runs and what they produce: verdicts, artifacts, findings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update

from prodcontrol.adapters.store.base import StoreBase
from prodcontrol.adapters.store.gates import insert_gate
from prodcontrol.adapters.store.outbox import add_notification, insert_escalation
from prodcontrol.adapters.store.tables import (
    ArtifactRow,
    EscalationRow,
    FindingRow,
    GateRow,
    RunRow,
    VerdictRow,
)
from prodcontrol.adapters.store.transaction import WriteTx, set_fields, to_record
from prodcontrol.evidence import store_rules as rules
from prodcontrol.evidence.port import RunClosed, RunFollowUp
from prodcontrol.evidence.records import (
    Artifact,
    ArtifactIn,
    ControlRun,
    Finding,
    FindingIn,
    FindingStatus,
    Gate,
    NotificationIn,
    RunStatus,
    Verdict,
    VerdictIn,
)


class RunsMixin(StoreBase):
    """Runs, verdicts, artifacts and findings."""

    def start_run(
        self,
        model: str,
        model_version: str,
        tier: str,
        trigger: str,
        *,
        idempotency_key: str | None = None,
        flow_run_id: str | None = None,
        sample: dict[str, Any] | None = None,
    ) -> ControlRun:
        with self._write() as tx:
            if idempotency_key is not None:
                existing = tx.session.scalar(
                    select(RunRow).where(RunRow.idempotency_key == idempotency_key)
                )
                if existing is not None:
                    return rules.same_run(to_record(existing, ControlRun), model, model_version)
            run = rules.new_run(
                model, model_version, tier, trigger, idempotency_key, flow_run_id, sample, tx.now
            )
            return tx.insert(RunRow, run, "run", "started", model)

    def finish_run(
        self,
        run_id: str,
        status: RunStatus,
        verdicts: Sequence[VerdictIn],
        artifacts: Sequence[ArtifactIn],
        findings: Sequence[FindingIn],
        *,
        notifications: Sequence[NotificationIn] = (),
    ) -> ControlRun:
        rules.check_closing("finish_run", status)
        rules.check_run_outputs(verdicts, artifacts, findings)
        with self._write() as tx:
            run, _, written = self._finish(
                tx, run_id, status, verdicts=verdicts, artifacts=artifacts, findings=findings
            )
            finding_ids = {f.control_id: f.id for f in written}
            for message in notifications:
                add_notification(tx, message, run.model, finding_ids)
            return self._log_finished(tx, run)

    def close_run(
        self,
        run_id: str,
        status: RunStatus,
        verdicts: Sequence[VerdictIn],
        artifacts: Sequence[ArtifactIn],
        findings: Sequence[FindingIn],
        *,
        follow_up: RunFollowUp,
    ) -> RunClosed:
        rules.check_closing("close_run", status)
        rules.check_run_outputs(verdicts, artifacts, findings)
        with self._write() as tx:
            run, written_verdicts, written = self._finish(
                tx, run_id, status, verdicts=verdicts, artifacts=artifacts, findings=findings
            )
            closed = rules.follow_up_run(
                follow_up,
                run,
                written_verdicts,
                written,
                self._pending_finding_gate(tx, run.model, run.model_version),
                join_gate=lambda gate: self._join_gate(tx, gate, written),
                open_gate=lambda gate: insert_gate(tx, gate),
                has_chain=lambda gate: self._has_chain(tx, gate),
                start_chain=lambda step: insert_escalation(tx, step.escalation, step.notifications),
            )
            self._log_finished(tx, run)
            return closed

    def _finish(  # the run's row and outputs; the caller logs ``run.finished`` last
        self,
        tx: WriteTx,
        run_id: str,
        status: RunStatus,
        *,
        verdicts: Sequence[VerdictIn],
        artifacts: Sequence[ArtifactIn],
        findings: Sequence[FindingIn],
    ) -> tuple[ControlRun, list[Verdict], list[Finding]]:
        row = self._get(tx.session, RunRow, "run", run_id)
        run = to_record(row, ControlRun)
        rules.check_running(run_id, run.status)
        written = [
            tx.insert(VerdictRow, v, "verdict", "recorded", run.model)
            for v in (rules.new_verdict(v, run.id, tx.now) for v in verdicts)
        ]
        by_control = {v.control_id: v for v in written}
        for artifact in artifacts:
            record = rules.new_artifact(artifact, run.id, by_control, tx.now)
            tx.insert(ArtifactRow, record, "artifact", "recorded", run.model)
        found = [
            tx.insert(FindingRow, f, "finding", "opened", run.model)
            for f in (rules.new_finding(f, run, by_control, tx.now) for f in findings)
        ]
        row.status, row.finished_at = status, tx.now
        tx.session.flush()
        return to_record(row, ControlRun), written, found

    @staticmethod
    def _log_finished(tx: WriteTx, run: ControlRun) -> ControlRun:
        """The run's last event: everything it produced is logged before it."""
        tx.log_record(run, "run", "finished", run.model)
        return run

    @staticmethod
    def _pending_finding_gate(tx: WriteTx, model: str, model_version: str) -> Gate | None:
        row = tx.session.scalar(
            select(GateRow).where(
                GateRow.model == model,
                GateRow.model_version == model_version,
                GateRow.kind == "finding",
                GateRow.status == "pending",
            )
        )
        return to_record(row, Gate) if row is not None else None

    def _join_gate(self, tx: WriteTx, gate: Gate, findings: Sequence[Finding]) -> Gate:
        """A later run of the version joins its pending gate: the gate now lists its findings."""
        row = self._get(tx.session, GateRow, "gate", gate.id)
        joined = rules.joined_context(to_record(row, Gate), findings)
        if joined is None:
            return to_record(row, Gate)
        row.context, run_id = joined
        tx.session.flush()
        record = to_record(row, Gate)
        tx.log_record(record, "gate", "joined", record.model, run_id=run_id)
        return record

    @staticmethod
    def _has_chain(tx: WriteTx, gate: Gate) -> bool:
        clauses = [EscalationRow.gate_id == gate.id]
        if gate.finding_id is not None:
            clauses.append(EscalationRow.finding_id == gate.finding_id)
        found = tx.session.scalar(select(EscalationRow.id).where(or_(*clauses)).limit(1))
        return found is not None

    def set_finding_status(
        self,
        finding_id: str,
        status: FindingStatus,
        reason: str,
        *,
        expected: FindingStatus | None = None,
    ) -> Finding:
        with self._write() as tx:
            if expected is not None:
                changed = tx.session.execute(
                    update(FindingRow)
                    .where(FindingRow.id == finding_id, FindingRow.status == expected)
                    .values(status=status)
                    .execution_options(synchronize_session=False)
                )
                if getattr(changed, "rowcount", 0) != 1:
                    now = self._get(tx.session, FindingRow, "finding", finding_id).status
                    raise rules.finding_conflict(finding_id, now, expected, status)
            row = self._get(tx.session, FindingRow, "finding", finding_id)
            set_fields(row, rules.finding_status(status, tx.now))
            tx.session.flush()
            record = to_record(row, Finding)
            tx.log_record(record, "finding", status, record.model, reason=reason)
            return record

    # ------------------------------------------------------------------ reads

    def get_run(self, run_id: str) -> ControlRun:
        return self._record(RunRow, ControlRun, "run", run_id)

    def list_runs(
        self, model: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> list[ControlRun]:
        """Runs started in ``[since, until)``, oldest first."""
        stmt = select(RunRow).order_by(RunRow.started_at, RunRow.id)
        if model is not None:
            stmt = stmt.where(RunRow.model == model)
        if since is not None:
            stmt = stmt.where(RunRow.started_at >= since)
        if until is not None:
            stmt = stmt.where(RunRow.started_at < until)
        return self._records(stmt, ControlRun)

    def verdicts_for(self, run_id: str) -> list[Verdict]:
        stmt = select(VerdictRow).where(VerdictRow.run_id == run_id).order_by(VerdictRow.control_id)
        return self._records(stmt, Verdict)

    def latest_verdicts(self, model: str) -> list[Verdict]:
        """The newest verdict per control, by run start then recording time."""
        rank = func.row_number().over(
            partition_by=VerdictRow.control_id,
            order_by=(RunRow.started_at.desc(), VerdictRow.created_at.desc(), VerdictRow.id),
        )
        ranked = (
            select(VerdictRow.id, rank.label("rank"))
            .join(RunRow, RunRow.id == VerdictRow.run_id)
            .where(RunRow.model == model)
            .subquery()
        )
        stmt = (
            select(VerdictRow)
            .join(ranked, ranked.c.id == VerdictRow.id)
            .where(ranked.c.rank == 1)
            .order_by(VerdictRow.control_id)
        )
        return self._records(stmt, Verdict)

    def artifacts_for(self, run_id: str) -> list[Artifact]:
        stmt = (
            select(ArtifactRow)
            .where(ArtifactRow.run_id == run_id)
            .order_by(ArtifactRow.created_at, ArtifactRow.name)
        )
        return self._records(stmt, Artifact)

    def get_finding(self, finding_id: str) -> Finding:
        return self._record(FindingRow, Finding, "finding", finding_id)

    def list_findings(
        self, model: str | None = None, status: FindingStatus | None = None
    ) -> list[Finding]:
        stmt = select(FindingRow).order_by(FindingRow.opened_at, FindingRow.id)
        if model is not None:
            stmt = stmt.where(FindingRow.model == model)
        if status is not None:
            stmt = stmt.where(FindingRow.status == status)
        return self._records(stmt, Finding)
