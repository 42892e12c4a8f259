"""Control runs and what they produce in the in-memory store: verdicts, artifacts, findings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from prodcontrol.clock import ensure_utc
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
from prodcontrol.testing.store_base import _stored, _Tx
from prodcontrol.testing.store_gates import GatesPart


class RunsPart(GatesPart):
    """Runs, verdicts, artifacts and findings; closing a run with its gate and chain."""

    # ------------------------------------------------------------------ runs

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
                existing: ControlRun | None = next(
                    (r for r in self._rows["run"].values() if r.idempotency_key == idempotency_key),
                    None,
                )
                if existing is not None:
                    return rules.same_run(existing, model, model_version)
            run = rules.new_run(
                model, model_version, tier, trigger, idempotency_key, flow_run_id, sample, tx.now
            )
            return tx.insert("run", run, "started", model)

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
                self._add_notification(tx, message, run.model, finding_ids)
            tx.log(run, "run", "finished", run.model)
            return run

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
                self._pending_finding_gate(run.model, run.model_version),
                join_gate=lambda gate: self._join_gate(tx, gate, written),
                open_gate=lambda gate: self._insert_gate(tx, gate),
                has_chain=self._has_chain,
                start_chain=lambda step: self._insert_escalation(
                    tx, step.escalation, step.notifications
                ),
            )
            tx.log(run, "run", "finished", run.model)
            return closed

    def _finish(
        self,
        tx: _Tx,
        run_id: str,
        status: RunStatus,
        *,
        verdicts: Sequence[VerdictIn],
        artifacts: Sequence[ArtifactIn],
        findings: Sequence[FindingIn],
    ) -> tuple[ControlRun, list[Verdict], list[Finding]]:
        run: ControlRun = self._get("run", "run", run_id)
        rules.check_running(run_id, run.status)
        written = [
            tx.insert("verdict", v, "recorded", run.model)
            for v in (rules.new_verdict(v, run.id, tx.now) for v in verdicts)
        ]
        by_control = {v.control_id: v for v in written}
        for artifact in artifacts:
            record = rules.new_artifact(artifact, run.id, by_control, tx.now)
            tx.insert("artifact", record, "recorded", run.model)
        found = [
            tx.insert("finding", f, "opened", run.model)
            for f in (rules.new_finding(f, run, by_control, tx.now) for f in findings)
        ]
        run = run.model_copy(update={"status": status, "finished_at": tx.now})
        self._rows["run"][run.id] = _stored(run)
        return run, written, found

    def _join_gate(self, tx: _Tx, gate: Gate, findings: Sequence[Finding]) -> Gate:
        row: Gate = self._get("gate", "gate", gate.id)
        joining = rules.joined_context(row, findings)
        if joining is None:
            return row
        context, run_id = joining
        joined = row.model_copy(update={"context": context})
        return tx.update("gate", joined, "joined", joined.model, run_id=run_id)

    def _has_chain(self, gate: Gate) -> bool:
        return any(
            e.gate_id == gate.id
            or (gate.finding_id is not None and e.finding_id == gate.finding_id)
            for e in self._rows["escalation"].values()
        )

    def set_finding_status(
        self,
        finding_id: str,
        status: FindingStatus,
        reason: str,
        *,
        expected: FindingStatus | None = None,
    ) -> Finding:
        with self._write() as tx:
            row: Finding = self._get("finding", "finding", finding_id)
            if expected is not None and row.status != expected:
                raise rules.finding_conflict(finding_id, row.status, expected, status)
            changed = row.model_copy(update=rules.finding_status(status, tx.now))
            return tx.update("finding", changed, status, changed.model, reason=reason)

    def get_run(self, run_id: str) -> ControlRun:
        with self._lock:
            run: ControlRun = self._get("run", "run", run_id)
            return run

    def list_runs(
        self, model: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> list[ControlRun]:
        """Runs started in ``[since, until)``, oldest first."""
        runs: list[ControlRun] = self._all("run")
        return sorted(
            (
                r
                for r in runs
                if (model is None or r.model == model)
                and (since is None or r.started_at >= ensure_utc(since))
                and (until is None or r.started_at < ensure_utc(until))
            ),
            key=lambda r: (r.started_at, r.id),
        )

    def verdicts_for(self, run_id: str) -> list[Verdict]:
        verdicts: list[Verdict] = self._all("verdict")
        return sorted((v for v in verdicts if v.run_id == run_id), key=lambda v: v.control_id)

    def latest_verdicts(self, model: str) -> list[Verdict]:
        """The newest verdict per control, by run start then recording time."""
        with self._lock:
            runs = {r.id: r for r in self._rows["run"].values() if r.model == model}
            verdicts: list[Verdict] = [
                v for v in self._rows["verdict"].values() if v.run_id in runs
            ]
        newest: dict[str, Verdict] = {}
        for v in sorted(verdicts, key=lambda v: v.id):
            best = newest.get(v.control_id)
            key = (runs[v.run_id].started_at, v.created_at)
            if best is None or key > (runs[best.run_id].started_at, best.created_at):
                newest[v.control_id] = v
        return sorted(newest.values(), key=lambda v: v.control_id)

    def artifacts_for(self, run_id: str) -> list[Artifact]:
        artifacts: list[Artifact] = self._all("artifact")
        return sorted(
            (a for a in artifacts if a.run_id == run_id), key=lambda a: (a.created_at, a.name)
        )

    def get_finding(self, finding_id: str) -> Finding:
        with self._lock:
            finding: Finding = self._get("finding", "finding", finding_id)
            return finding

    def list_findings(
        self, model: str | None = None, status: FindingStatus | None = None
    ) -> list[Finding]:
        findings: list[Finding] = self._all("finding")
        return sorted(
            (
                f
                for f in findings
                if (model is None or f.model == model) and (status is None or f.status == status)
            ),
            key=lambda f: (f.opened_at, f.id),
        )
