"""An in-memory :class:`~prodcontrol.evidence.port.EvidenceStore`, for unit tests and embedders.

It keeps what the SQL store keeps, the same way: every write is one transaction (all of it or
none of it: a call that fails half way restores the tables, the log and the signatures as they
were), every row written is logged as a chained event with the full record, the keys the
database enforces are enforced here too (one pending finding gate per model version, one chain
per lead finding, one decision per person per gate, unique idempotency keys, references to rows
that exist), and ``verify`` checks the chain and every row against its newest event. The store
contract tests (``tests/store``) run against it, SQLite and PostgreSQL alike.

What it does not do: survive the process, be shared by two processes, or purge (retention is a
property of the database, tested on SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from prodcontrol.clock import Clock, SystemClock, ensure_utc
from prodcontrol.errors import DecisionRefused, StoreConflict, UsageError
from prodcontrol.evidence.canonical import CURRENT_FORMAT
from prodcontrol.evidence.chain import (
    GENESIS,
    canonical_json,
    compare_records,
    entry_hash,
    latest_records,
    verify_chain,
)
from prodcontrol.evidence.port import (
    AttemptReport,
    RecordNotFound,
    RunClosed,
    RunFollowUp,
    check_run_outputs,
)
from prodcontrol.evidence.records import (
    Action,
    ActionIn,
    ActionKind,
    ActionStatus,
    Artifact,
    ArtifactIn,
    ControlRun,
    Decision,
    DecisionIn,
    DeliveryAttempt,
    DeliveryAttemptIn,
    DomainEvent,
    DomainEventIn,
    DomainEventStatus,
    Escalation,
    EscalationIn,
    EscalationStatus,
    Event,
    EvidenceReport,
    Finding,
    FindingIn,
    FindingStatus,
    Gate,
    GateIn,
    GateStatus,
    HeadSignature,
    Notification,
    NotificationIn,
    NotificationStatus,
    RunStatus,
    Verdict,
    VerdictIn,
    Waiver,
    WaiverIn,
)
from prodcontrol.evidence.retention import PURGE_KIND, chain_start
from prodcontrol.evidence.signing import KEY_ADDED, SigningKey, key_payload, sign_head

R = TypeVar("R", bound=BaseModel)

# subject_type in the log -> the record its rows are (the SQL store's tables, one dict each)
SUBJECTS: dict[str, type[BaseModel]] = {
    "run": ControlRun,
    "verdict": Verdict,
    "artifact": Artifact,
    "finding": Finding,
    "gate": Gate,
    "decision": Decision,
    "waiver": Waiver,
    "action": Action,
    "domain_event": DomainEvent,
    "escalation": Escalation,
    "notification": Notification,
    "delivery_attempt": DeliveryAttempt,
}
# the references the database checks (its foreign keys): field -> subject it names
REFERENCES: dict[str, dict[str, str]] = {
    "verdict": {"run_id": "run"},
    "artifact": {"run_id": "run", "verdict_id": "verdict"},
    "finding": {"run_id": "run", "verdict_id": "verdict"},
    "gate": {"finding_id": "finding"},
    "decision": {"gate_id": "gate"},
    "waiver": {"finding_id": "finding"},
    "action": {"gate_id": "gate"},
    "domain_event": {"gate_id": "gate"},
    "escalation": {"finding_id": "finding", "gate_id": "gate"},
    "notification": {"escalation_id": "escalation", "gate_id": "gate", "finding_id": "finding"},
    "delivery_attempt": {"notification_id": "notification"},
}
CLOSED_FINDING = frozenset({"resolved", "closed"})
FINAL_NOTIFICATION = frozenset({"sent", "dead"})
KEY_SUBJECT = "evidence"


def _new_id() -> str:
    return str(uuid.uuid4())


def _stored(record: R) -> R:
    """The record as a database row gives it back: JSON columns hold their JSON-mode dump."""
    python = record.model_dump()
    as_json = record.model_dump(mode="json")
    values = {k: as_json[k] if isinstance(v, dict) else v for k, v in python.items()}
    return type(record).model_validate(values)


def _model_in(payload: Mapping[str, Any]) -> str | None:
    model = payload.get("model")
    return model if isinstance(model, str) else None


class _Tx:
    """The writes of one store call: rows and their chained events, under the store's lock."""

    def __init__(self, store: InMemoryEvidenceStore) -> None:
        self.store = store
        self.now = ensure_utc(store.clock.now())
        self.start_seq = store._head()[0]
        self.replaces: str | None = None

    def insert(self, subject: str, record: R, verb: str, model: str | None, **context: Any) -> R:
        row = _stored(record)
        self._check_references(subject, row)
        self.store._rows[subject][str(getattr(row, "id"))] = row  # noqa: B009 - every row has one
        self.log(row, subject, verb, model, **context)
        return row

    def update(self, subject: str, record: R, verb: str, model: str | None, **context: Any) -> R:
        row = _stored(record)
        self.store._rows[subject][str(getattr(row, "id"))] = row  # noqa: B009
        self.log(row, subject, verb, model, **context)
        return row

    def log(
        self, record: BaseModel, subject: str, verb: str, model: str | None, **context: Any
    ) -> Event:
        subject_id = str(getattr(record, "id"))  # noqa: B009 - every stored record has an id
        payload = {"record": record.model_dump(mode="json"), **context}
        return self.append(f"{subject}.{verb}", subject, subject_id, model, payload)

    def append(
        self,
        kind: str,
        subject_type: str,
        subject_id: str,
        model: str | None,
        payload: dict[str, Any],
    ) -> Event:
        stored = json.loads(canonical_json(payload))
        seq, prev = self.store._head()
        event = Event(
            seq=seq + 1,
            at=self.now,
            kind=kind,
            subject_type=subject_type,
            subject_id=subject_id,
            model=model,
            payload=stored,
            prev_hash=prev,
            hash=entry_hash(
                prev,
                seq + 1,
                self.now,
                kind,
                subject_type,
                subject_id,
                model,
                stored,
                CURRENT_FORMAT,
            ),
            format=CURRENT_FORMAT,
        )
        self.store._events.append(event)
        return event

    def _check_references(self, subject: str, row: BaseModel) -> None:
        for field, target in REFERENCES.get(subject, {}).items():
            value = getattr(row, field)
            if value is not None and value not in self.store._rows[target]:
                raise StoreConflict(
                    f"the evidence store refused the write: {subject}.{field} {value!r} names "
                    f"no {target}"
                )

    def finish(self) -> None:
        """Sign the head this call leaves, as the SQL store does (one signature per commit)."""
        store = self.store
        if store._head()[0] == self.start_seq:
            return
        signed_by = store._signatures[-1].key_id if store._signatures else None
        if store.signer is None:
            if signed_by is not None:
                raise UsageError(
                    f"the evidence store is signed (key {signed_by}) but this process has no "
                    "signing key, so nothing was written: set evidence_signing_key (or "
                    "PRODCONTROL_EVIDENCE_SIGNING_KEY) to that key's file"
                )
            return
        if signed_by is None:
            payload = key_payload(store.signer, None)
            self.append(KEY_ADDED, KEY_SUBJECT, store.signer.key_id, None, payload)
        elif signed_by not in (store.signer.key_id, self.replaces):
            raise UsageError(
                f"the evidence store is signed by key {signed_by}, but evidence_signing_key is "
                f"key {store.signer.key_id}, so nothing was written: configure the store's key, "
                "or replace it with `prodcontrol evidence rotate-key`"
            )
        seq, digest = store._head()
        store._signatures.append(sign_head(store.signer, seq, digest, self.start_seq))


class InMemoryEvidenceStore:
    """Evidence in process memory: one lock, one transaction per call, every row chained."""

    def __init__(self, clock: Clock | None = None, signer: SigningKey | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.signer = signer
        self._lock = threading.RLock()
        self._rows: dict[str, dict[str, Any]] = {subject: {} for subject in SUBJECTS}
        self._events: list[Event] = []
        self._signatures: list[HeadSignature] = []

    def __repr__(self) -> str:
        return f"InMemoryEvidenceStore({len(self._events)} events)"

    def close(self) -> None:
        """Nothing to release (the SQL store disposes its connection pool here)."""

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _write(self) -> Iterator[_Tx]:
        with self._lock:
            rows = {subject: dict(table) for subject, table in self._rows.items()}
            events, signatures = len(self._events), len(self._signatures)
            try:
                tx = _Tx(self)
                yield tx
                tx.finish()
            except BaseException:
                self._rows = rows
                del self._events[events:]
                del self._signatures[signatures:]
                raise

    def _head(self) -> tuple[int, str]:
        if not self._events:
            return 0, GENESIS
        last = self._events[-1]
        return last.seq, last.hash

    def _get(self, subject: str, kind: str, record_id: str) -> Any:
        row = self._rows[subject].get(record_id)
        if row is None:
            raise RecordNotFound(kind, record_id)
        return row

    def _all(self, subject: str) -> list[Any]:
        with self._lock:
            return list(self._rows[subject].values())

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
                    if (existing.model, existing.model_version) != (model, model_version):
                        raise StoreConflict(
                            f"idempotency key {idempotency_key!r} already belongs to run "
                            f"{existing.id} of {existing.model} version {existing.model_version}; "
                            "use a key unique to each run"
                        )
                    return existing
            run = ControlRun(
                id=_new_id(),
                model=model,
                model_version=model_version,
                tier=tier,
                trigger=trigger,
                flow_run_id=flow_run_id,
                idempotency_key=idempotency_key,
                status="running",
                started_at=tx.now,
                sample=sample or {},
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
        if status == "running":
            raise UsageError("finish_run needs a final status: succeeded, failed or error")
        check_run_outputs(verdicts, artifacts, findings)
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
        if status == "running":
            raise UsageError("close_run needs a final status: succeeded, failed or error")
        check_run_outputs(verdicts, artifacts, findings)
        with self._write() as tx:
            run, written_verdicts, written = self._finish(
                tx, run_id, status, verdicts=verdicts, artifacts=artifacts, findings=findings
            )
            pending = self._pending_finding_gate(run.model, run.model_version)
            chosen = follow_up.gate(run, written, pending)
            gate: Gate | None = None
            joined = False
            if isinstance(chosen, Gate):
                gate, joined = self._join_gate(tx, chosen, written), True
            elif chosen is not None:
                gate = self._insert_gate(tx, chosen)
            escalation = None
            if gate is None or not self._has_chain(gate):
                step = follow_up.first_step(run, written_verdicts, written, gate)
                if step is not None:
                    escalation = self._insert_escalation(tx, step.escalation, step.notifications)
            tx.log(run, "run", "finished", run.model)
            return RunClosed(
                run=run,
                verdicts=written_verdicts,
                findings=written,
                gate=gate,
                joined=joined,
                escalation=escalation,
            )

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
        if run.status != "running":
            raise StoreConflict(f"run {run_id} already finished with status {run.status}")
        written = [
            tx.insert(
                "verdict",
                Verdict(**v.model_dump(), id=_new_id(), run_id=run.id, created_at=tx.now),
                "recorded",
                run.model,
            )
            for v in verdicts
        ]
        by_control = {v.control_id: v for v in written}
        for artifact in artifacts:
            explains = by_control.get(artifact.control_id) if artifact.control_id else None
            record = Artifact(
                **artifact.model_dump(exclude={"control_id"}),
                id=_new_id(),
                run_id=run.id,
                verdict_id=explains.id if explains else None,
                created_at=tx.now,
            )
            tx.insert("artifact", record, "recorded", run.model)
        found = []
        for finding in findings:
            verdict = by_control[finding.control_id]
            opened = Finding(
                **finding.model_dump(),
                id=_new_id(),
                run_id=run.id,
                verdict_id=verdict.id,
                model=run.model,
                model_version=run.model_version,
                verdict=verdict.verdict,
                opened_at=tx.now,
                closed_at=tx.now if finding.status in CLOSED_FINDING else None,
            )
            found.append(tx.insert("finding", opened, "opened", run.model))
        run = run.model_copy(update={"status": status, "finished_at": tx.now})
        self._rows["run"][run.id] = _stored(run)
        return run, written, found

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

    def _join_gate(self, tx: _Tx, gate: Gate, findings: Sequence[Finding]) -> Gate:
        row: Gate = self._get("gate", "gate", gate.id)
        joining = [f for f in findings if f.blocking and f.status == "open"]
        listed = [str(i) for i in row.context.get("findings") or [row.finding_id] if i]
        new = [f for f in joining if f.id not in listed]
        if not new:
            return row
        controls = [str(c) for c in row.context.get("controls") or []]
        context = row.context | {
            "findings": listed + [f.id for f in new],
            "controls": controls + [f.control_id for f in new if f.control_id not in controls],
        }
        joined = row.model_copy(update={"context": context})
        return tx.update("gate", joined, "joined", joined.model, run_id=new[0].run_id)

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
                raise StoreConflict(
                    f"finding {finding_id} is {row.status}, not {expected}; it was not set {status}"
                )
            closed = tx.now if status in CLOSED_FINDING else None
            changed = row.model_copy(update={"status": status, "closed_at": closed})
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

    # ------------------------------------------------------------------ gates

    def _insert_gate(
        self, tx: _Tx, gate: GateIn, notifications: Sequence[NotificationIn] = ()
    ) -> Gate:
        if gate.kind == "finding" and self._pending_finding_gate(gate.model, gate.model_version):
            raise StoreConflict(
                "the evidence store refused the write: uq_pc_gates_pending_finding (a pending "
                f"finding gate for {gate.model} version {gate.model_version} exists)"
            )
        record = Gate(
            **gate.model_dump(), id=_new_id(), status="pending", opened_at=tx.now, version=1
        )
        record = tx.insert("gate", record, "opened", record.model)
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
                raise DecisionRefused(
                    f"{decision.person} has already decided on gate {gate_id}; "
                    "each person decides once"
                )
            gate = self._compare_and_set(tx, gate_id, expected_version, new_status)
            record = Decision(
                **decision.model_dump(), id=_new_id(), gate_id=gate_id, decided_at=tx.now
            )
            tx.insert("decision", record, "recorded", gate.model)
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

    def _request(self, tx: _Tx, gate: Gate, action: ActionIn) -> Action:
        if action.status != "requested" or action.gate_id not in (None, gate.id):
            raise UsageError(
                f"a gate queues its own action with status 'requested', not {action.status!r} "
                f"for gate {action.gate_id}"
            )
        record = Action(
            **action.model_dump() | {"gate_id": gate.id},
            id=_new_id(),
            created_at=tx.now,
            next_attempt_at=tx.now,
        )
        return tx.insert("action", record, "requested", record.model)

    def _compare_and_set(
        self, tx: _Tx, gate_id: str, expected_version: int, new_status: GateStatus | None
    ) -> Gate:
        """Bump the version (and close the gate) only if it is pending at the expected version."""
        row: Gate = self._get("gate", "gate", gate_id)
        if row.version != expected_version:
            raise StoreConflict(
                f"gate {gate_id} changed since it was read (version {expected_version}, now "
                f"{row.version}, {row.status}); re-read the gate and decide again"
            )
        if row.status != "pending":
            raise DecisionRefused(f"gate {gate_id} is already {row.status}; it takes no decisions")
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
            record = DomainEvent(
                **event.model_dump(),
                id=_new_id(),
                status="pending",
                created_at=tx.now,
                next_attempt_at=tx.now,
            )
            tx.insert("domain_event", record, "queued", record.model)

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
            events: list[DomainEvent] = self._all("domain_event")
            due = sorted(
                (
                    e
                    for e in events
                    if e.status in ("pending", "applying")
                    and e.next_attempt_at is not None
                    and e.next_attempt_at <= when
                    and (gate_id is None or e.gate_id == gate_id)
                ),
                key=lambda e: (e.created_at, e.id),
            )[: max(0, limit)]
            until = when + timedelta(seconds=lease_seconds)
            return [
                tx.update(
                    "domain_event",
                    e.model_copy(update={"status": "applying", "next_attempt_at": until}),
                    "applying",
                    e.model,
                )
                for e in due
            ]

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
            if row.status != "applying":
                raise StoreConflict(
                    f"domain event {event_id} is {row.status}, not being handled; it was not "
                    f"set {status} (another dispatcher's lease ran out and it took over)"
                )
            update: dict[str, Any] = {"attempts": row.attempts + 1, "result": dict(result)}
            if status == "pending":
                update |= {"status": "pending", "next_attempt_at": ensure_utc(retry_at or tx.now)}
            else:
                done = tx.now if status == "done" else None
                update |= {"status": status, "next_attempt_at": None, "done_at": done}
            settled = row.model_copy(update=update)
            return tx.update("domain_event", settled, status, settled.model)

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
            if (finding.model, finding.control_id) != (waiver.model, waiver.control_id):
                raise UsageError(
                    f"finding {finding.id} is about {finding.model}/{finding.control_id}, not "
                    f"{waiver.model}/{waiver.control_id}; waive the finding it names"
                )
            record = Waiver(**waiver.model_dump(), id=_new_id(), granted_at=tx.now)
            record = tx.insert("waiver", record, "granted", record.model)
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
            due = tx.now if action.status == "requested" else None
            record = Action(
                **action.model_dump(), id=_new_id(), created_at=tx.now, next_attempt_at=due
            )
            return tx.insert("action", record, action.status, record.model)

    def claim_actions(
        self, now: datetime, *, gate_id: str | None = None, lease_seconds: float = 300.0
    ) -> list[Action]:
        when = ensure_utc(now)
        with self._write() as tx:
            rows: list[Action] = sorted(
                (
                    a
                    for a in self._rows["action"].values()
                    if a.status in ("requested", "applying")
                    and a.next_attempt_at is not None
                    and a.next_attempt_at <= when
                    and (gate_id is None or a.gate_id == gate_id)
                ),
                key=lambda a: (a.created_at, a.id),
            )
            until = tx.now + timedelta(seconds=lease_seconds)
            return [
                tx.update(
                    "action",
                    a.model_copy(update={"status": "applying", "next_attempt_at": until}),
                    "applying",
                    a.model,
                )
                for a in rows
            ]

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
            if row.status != "applying":
                raise StoreConflict(
                    f"action {action_id} is {row.status}, not being applied; it was not "
                    f"set {status} (another applier's lease ran out and it took over)"
                )
            update: dict[str, Any] = {
                "attempts": row.attempts + 1,
                "result": dict(result),
                "model_version": model_version or row.model_version,
                "action": action or row.action,
                "params": dict(params) if params is not None else row.params,
            }
            if status == "requested":
                update |= {"status": "requested", "next_attempt_at": ensure_utc(retry_at or tx.now)}
            else:
                applied = tx.now if status == "applied" else None
                update |= {"status": status, "next_attempt_at": None, "applied_at": applied}
            settled = row.model_copy(update=update)
            return tx.update("action", settled, status, settled.model)

    def list_actions(self, model: str | None = None) -> list[Action]:
        actions: list[Action] = self._all("action")
        return sorted(
            (a for a in actions if model is None or a.model == model),
            key=lambda a: (a.created_at, a.id),
        )

    # ------------------------------------------------------------------ escalations

    def _insert_escalation(
        self, tx: _Tx, escalation: EscalationIn, notifications: Sequence[NotificationIn] = ()
    ) -> Escalation:
        if escalation.finding_id is not None and any(
            e.finding_id == escalation.finding_id for e in self._rows["escalation"].values()
        ):
            raise StoreConflict(
                "the evidence store refused the write: uq_pc_escalations_finding_id (finding "
                f"{escalation.finding_id} has a chain)"
            )
        record = Escalation(
            **escalation.model_dump(), id=_new_id(), status="active", started_at=tx.now
        )
        record = tx.insert("escalation", record, "started", record.model)
        for message in notifications:
            self._add_notification(
                tx,
                message,
                record.model,
                escalation_id=record.id,
                gate_id=record.gate_id,
                finding_id=record.finding_id,
            )
        return record

    def start_escalation(
        self, escalation: EscalationIn, notifications: Sequence[NotificationIn] = ()
    ) -> Escalation:
        with self._write() as tx:
            return self._insert_escalation(tx, escalation, notifications)

    def advance_escalation(
        self,
        escalation_id: str,
        step: int,
        next_due_at: datetime | None,
        notifications: Sequence[NotificationIn] = (),
    ) -> Escalation:
        with self._write() as tx:
            row: Escalation = self._get("escalation", "escalation", escalation_id)
            if row.status != "active" or step <= row.step:
                raise StoreConflict(
                    f"escalation {escalation_id} is {row.status} at step {row.step}; it cannot "
                    f"move to step {step}. Re-read it: someone acknowledged or advanced it first"
                )
            update: dict[str, Any] = {"step": step, "next_due_at": next_due_at}
            if next_due_at is None:
                update |= {"status": "exhausted", "closed_at": tx.now}
            advanced = _stored(row.model_copy(update=update))
            self._rows["escalation"][row.id] = advanced
            for message in notifications:
                self._add_notification(
                    tx,
                    message,
                    row.model,
                    escalation_id=row.id,
                    gate_id=row.gate_id,
                    finding_id=row.finding_id,
                )
            verb = "advanced" if next_due_at is not None else "exhausted"
            return tx.update("escalation", advanced, verb, row.model)

    def acknowledge_escalation(self, escalation_id: str, person: str) -> Escalation:
        with self._write() as tx:
            row: Escalation = self._get("escalation", "escalation", escalation_id)
            if row.acknowledged_at is not None or row.status == "resolved":
                return row
            acked = row.model_copy(
                update={
                    "status": "acknowledged",
                    "acknowledged_by": person,
                    "acknowledged_at": tx.now,
                    "next_due_at": None,
                }
            )
            return tx.update("escalation", acked, "acknowledged", acked.model)

    def resolve_escalation(self, escalation_id: str, reason: str) -> Escalation:
        with self._write() as tx:
            row: Escalation = self._get("escalation", "escalation", escalation_id)
            if row.status == "resolved":
                return row
            resolved = row.model_copy(
                update={"status": "resolved", "closed_at": tx.now, "next_due_at": None}
            )
            return tx.update("escalation", resolved, "resolved", resolved.model, reason=reason)

    def get_escalation(self, escalation_id: str) -> Escalation:
        with self._lock:
            escalation: Escalation = self._get("escalation", "escalation", escalation_id)
            return escalation

    def list_escalations(self, status: EscalationStatus | None = None) -> list[Escalation]:
        escalations: list[Escalation] = self._all("escalation")
        return sorted(
            (e for e in escalations if status is None or e.status == status),
            key=lambda e: (e.started_at, e.id),
        )

    def escalations_for_findings(self, finding_ids: Sequence[str]) -> list[Escalation]:
        wanted = set(finding_ids)
        escalations: list[Escalation] = self._all("escalation")
        return sorted(
            (e for e in escalations if e.finding_id in wanted), key=lambda e: (e.started_at, e.id)
        )

    # ------------------------------------------------------------------ outbox

    def _add_notification(
        self,
        tx: _Tx,
        message: NotificationIn,
        model: str | None,
        findings_by_control: Mapping[str, str] | None = None,
        **links: str | None,
    ) -> Notification:
        existing: Notification | None = next(
            (
                n
                for n in self._rows["notification"].values()
                if n.idempotency_key == message.idempotency_key
            ),
            None,
        )
        if existing is not None:
            return existing
        fields = message.model_dump(exclude={"control_id", "next_attempt_at"})
        for name, value in links.items():
            fields[name] = fields[name] or value
        if fields["finding_id"] is None and message.control_id is not None:
            if findings_by_control is None or message.control_id not in findings_by_control:
                raise UsageError(
                    f"notification {message.idempotency_key!r} names control "
                    f"{message.control_id!r}, but no finding for that control is written with it; "
                    "control_id links a message to a finding only inside finish_run, elsewhere "
                    "pass finding_id"
                )
            fields["finding_id"] = findings_by_control[message.control_id]
        record = Notification(
            **fields,
            id=_new_id(),
            status="pending",
            attempts=0,
            created_at=tx.now,
            next_attempt_at=message.next_attempt_at or tx.now,
        )
        return tx.insert("notification", record, "enqueued", model or _model_in(message.payload))

    def enqueue(self, notifications: Sequence[NotificationIn]) -> list[Notification]:
        with self._write() as tx:
            return [self._add_notification(tx, message, None) for message in notifications]

    def claim_due_notifications(
        self, now: datetime, limit: int, lease_seconds: float = 300.0
    ) -> list[Notification]:
        """Lease due messages: until the lease ends, no other sender is handed them."""
        when = ensure_utc(now)
        until = when + timedelta(seconds=lease_seconds)
        if limit < 1:
            return []
        with self._write() as tx:
            notes: list[Notification] = self._all("notification")
            due = sorted(
                (
                    n
                    for n in notes
                    if n.status == "pending"
                    and n.next_attempt_at <= when
                    and (n.claimed_until is None or n.claimed_until <= when)
                ),
                key=lambda n: (n.next_attempt_at, n.created_at),
            )[:limit]
            return [
                tx.update(
                    "notification",
                    n.model_copy(update={"claimed_until": until}),
                    "claimed",
                    _model_in(n.payload),
                )
                for n in due
            ]

    def record_attempt(
        self,
        notification_id: str,
        attempt: DeliveryAttemptIn,
        status: NotificationStatus,
        next_attempt_at: datetime | None = None,
        provider_ref: dict[str, Any] | None = None,
    ) -> Notification:
        """Log one delivery attempt and move the message on (a final message stays final)."""
        report = AttemptReport(notification_id, attempt, status, next_attempt_at, provider_ref)
        [updated] = self.record_attempts([report])
        return updated

    def record_attempts(self, attempts: Sequence[AttemptReport]) -> list[Notification]:
        if not attempts:
            return []
        with self._write() as tx:
            for report in attempts:
                self._get("notification", "notification", report.notification_id)
            return [self._apply_attempt(tx, report) for report in attempts]

    def _apply_attempt(self, tx: _Tx, report: AttemptReport) -> Notification:
        row: Notification = self._rows["notification"][report.notification_id]
        attempt = report.attempt
        record = DeliveryAttempt(
            **attempt.model_dump(exclude={"attempted_at"}),
            id=_new_id(),
            notification_id=row.id,
            attempted_at=attempt.attempted_at or tx.now,
        )
        model = _model_in(row.payload)
        tx.insert("delivery_attempt", record, "recorded", model)
        update: dict[str, Any] = {"attempts": row.attempts + 1, "claimed_until": None}
        if row.status not in FINAL_NOTIFICATION:
            update |= {
                "status": report.status,
                "last_error": attempt.error,
                "sent_at": tx.now if report.status == "sent" else row.sent_at,
                "next_attempt_at": ensure_utc(report.next_attempt_at or row.next_attempt_at),
                "provider_ref": dict(report.provider_ref or row.provider_ref),
            }
        changed = row.model_copy(update=update)
        return tx.update("notification", changed, changed.status, model)

    def list_notifications(self, status: NotificationStatus | None = None) -> list[Notification]:
        notes: list[Notification] = self._all("notification")
        return sorted(
            (n for n in notes if status is None or n.status == status),
            key=lambda n: (n.created_at, n.id),
        )

    def attempts_for(self, notification_id: str) -> list[DeliveryAttempt]:
        attempts: list[DeliveryAttempt] = self._all("delivery_attempt")
        return sorted(
            (a for a in attempts if a.notification_id == notification_id),
            key=lambda a: (a.attempted_at, a.id),
        )

    def notifications_about(
        self, *, finding_id: str | None = None, gate_id: str | None = None
    ) -> list[Notification]:
        if finding_id is None and gate_id is None:
            return []
        notes: list[Notification] = self._all("notification")
        return sorted(
            (
                n
                for n in notes
                if (finding_id is not None and n.finding_id == finding_id)
                or (gate_id is not None and n.gate_id == gate_id)
            ),
            key=lambda n: (n.created_at, n.id),
        )

    # ------------------------------------------------------------------ the event log

    def record_event(
        self,
        kind: str,
        subject_type: str,
        subject_id: str,
        model: str | None,
        payload: dict[str, Any],
    ) -> Event:
        if "record" in payload:
            raise UsageError(
                "the payload key 'record' is reserved for the store's row events; "
                "name it differently"
            )
        with self._write() as tx:
            return tx.append(kind, subject_type, subject_id, model, payload)

    def events(self, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        with self._lock:
            found = [e for e in self._events if e.seq > after_seq]
        return found[:limit] if limit is not None else found

    def chain_head(self) -> tuple[int, str]:
        with self._lock:
            return self._head()

    def latest_event(self, kind: str) -> Event | None:
        with self._lock:
            return next((e for e in reversed(self._events) if e.kind == kind), None)

    def head_signatures(self, after_seq: int = 0) -> list[HeadSignature]:
        with self._lock:
            return [s for s in self._signatures if s.seq > after_seq]

    def verify(self) -> EvidenceReport:
        """Check the chain, then that every row equals the newest record logged for it."""
        with self._lock:
            events = list(self._events)
            head = self._head()
            rows = [
                ((subject, row_id), row.model_dump(mode="json"))
                for subject, table in self._rows.items()
                for row_id, row in table.items()
            ]
            signatures = list(self._signatures)
        purges = [e for e in reversed(events) if e.kind == PURGE_KIND]
        start = chain_start(events[0] if events else None, purges)
        chain = verify_chain(events, expected_head=head, start=start)
        problems = compare_records(latest_records(events), rows, SUBJECTS)
        return EvidenceReport(
            ok=chain.ok and not problems,
            chain=chain,
            rows_checked=len(rows),
            mismatches=problems[:200],
            start_seq=start[0],
            recorded_head=head,
            head_signatures=signatures,
        )


__all__ = ["InMemoryEvidenceStore"]
