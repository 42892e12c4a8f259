"""The triggers: wait in the triggerer on gate records in the evidence store.

The evidence store is the source of truth (DESIGN §4): a decision made in Slack, the CLI, the
web page or the Airflow UI writes the gate record, and these triggers see it on their next poll.
They hold no worker slot and never write evidence. Expiring a gate and applying the tier's
timeout action happen back in the operator, through the core.

- :class:`ProdControlGateTrigger` (``ProdControlGateOperator``): fires when the gates closed or
  one is overdue.
- :class:`ProdControlHITLTrigger` (``ProdControlHITLGateOperator``): Airflow's ``HITLTrigger``
  (an answer in the Required Actions UI or the HITL REST API) that also reads the gate. When the
  gate was settled elsewhere it answers the Airflow request itself (``Decided elsewhere``, the
  reason naming who decided where), so the Required Actions page stops asking and the task
  finishes with the gate's outcome. Both triggers keep no state of their own: a triggerer that
  restarts re-reads the gate and the request, so no decision is lost or taken twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.providers.standard.triggers.hitl import (
    HITLTrigger,
    HITLTriggerEventFailurePayload,
)
from airflow.sdk.execution_time.hitl import update_hitl_detail_response
from airflow.triggers.base import BaseTrigger, TriggerEvent
from asgiref.sync import sync_to_async
from prodcontrol.evidence.port import RecordNotFound
from prodcontrol.evidence.records import Decision, Gate

DECIDED_ELSEWHERE = "Decided elsewhere"


def gate_state(database_url: str, gate_ids: list[str]) -> list[Gate]:
    """Read the gates (blocking; the trigger runs it in a thread)."""
    from prodcontrol.adapters.store.sql import SqlEvidenceStore

    store = SqlEvidenceStore(database_url)
    try:
        return [store.get_gate(gate_id) for gate_id in gate_ids]
    finally:
        store.close()


def summarize(gates: list[Gate], now: datetime) -> dict[str, Any] | None:
    """The event to fire, or ``None`` to keep waiting.

    ``decided``: every gate is closed. ``due``: a pending gate passed its ``due_at``, so its
    timeout action is owed (the operator expires it through the core and waits on the rest).
    """
    states = {g.id: g.status for g in gates}
    pending = [g for g in gates if g.status == "pending"]
    if not pending:
        return {"status": "decided", "gates": states}
    overdue = [g.id for g in pending if g.due_at is not None and g.due_at <= now]
    if overdue:
        return {"status": "due", "gates": states, "overdue": overdue}
    return None


class ProdControlGateTrigger(BaseTrigger):
    """Fire when every gate in ``gate_ids`` is closed, or when one of them is overdue."""

    def __init__(
        self, *, gate_ids: list[str], database_url: str, poll_interval: float = 30.0
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow leaves it untyped
        self.gate_ids = list(gate_ids)
        self.database_url = database_url
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "gate_ids": self.gate_ids,
                "database_url": self.database_url,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            try:
                gates = await asyncio.to_thread(gate_state, self.database_url, self.gate_ids)
            except RecordNotFound as exc:  # permanent: waiting longer cannot help
                yield TriggerEvent({"status": "error", "message": str(exc)})  # type: ignore[no-untyped-call]  # untyped upstream
                return
            except Exception as exc:  # a DB blip must not end the wait: log it and poll again
                self.log.warning("reading gates %s failed, retrying: %s", self.gate_ids, exc)
            else:
                event = summarize(gates, datetime.now(UTC))
                if event is not None:
                    yield TriggerEvent(event)  # type: ignore[no-untyped-call]  # untyped upstream
                    return
            await asyncio.sleep(self.poll_interval)


# --------------------------------------------------------------------------- Airflow HITL


def gate_and_decisions(database_url: str, gate_id: str) -> tuple[Gate, list[Decision]]:
    """Read one gate and its decisions (blocking; the trigger runs it in a thread)."""
    from prodcontrol.adapters.store.sql import SqlEvidenceStore

    store = SqlEvidenceStore(database_url)
    try:
        return store.get_gate(gate_id), store.decisions_for(gate_id)
    finally:
        store.close()


PAST = {"approve": "approved", "reject": "rejected"}


def approvals(decisions: list[Decision]) -> int:
    return sum(d.decision == "approve" for d in decisions)


def still_asking(gate: Gate, decisions: list[Decision], approval_number: int) -> bool:
    """Whether approval ``approval_number`` of a pending gate is still to be given."""
    return (
        gate.status == "pending"
        and approval_number <= gate.required_approvals
        and approvals(decisions) < approval_number
    )


def settled_elsewhere(
    gate: Gate, decisions: list[Decision], approval_number: int, now: datetime
) -> str | None:
    """Why the Airflow request need not be answered any more, or ``None`` to keep asking.

    The gate closed (a decision anywhere, or its expiry), approval ``approval_number`` was given
    (in Slack, the CLI or the web page), or the gate is past its due time (its timeout action is
    owed; the operator expires it through the core).
    """
    who = ", ".join(f"{d.person} {PAST[d.decision]} ({d.channel})" for d in decisions) or "nobody"
    if gate.status != "pending":
        return f"gate {gate.id} is {gate.status}: {who}"
    if not still_asking(gate, decisions, approval_number):
        return (
            f"approval {approval_number} of {gate.required_approvals} on gate {gate.id} "
            f"was given: {who}"
        )
    if gate.due_at is not None and gate.due_at <= now:
        return f"gate {gate.id} passed its due time {gate.due_at:%Y-%m-%d %H:%M} UTC"
    return None


class ProdControlHITLTrigger(HITLTrigger):
    """Airflow's HITL wait, which also ends when the prodcontrol gate is settled elsewhere.

    Each poll reads the Airflow request first (an answer there wins, as in ``HITLTrigger``), then
    the gate. A gate settled elsewhere is answered in Airflow by this trigger through the
    Execution API (``Decided elsewhere``, ``responded_by`` empty, the reason in the form), which
    Airflow writes only once: if a person answered in the same instant, Airflow refuses the
    second write and the person's answer is the one the task gets (prodcontrol's rules then see
    the gate already decided, so it is still one decision).
    """

    def __init__(
        self,
        *,
        gate_id: str,
        database_url: str,
        approval_number: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.gate_id = gate_id
        self.database_url = database_url
        self.approval_number = approval_number

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **kwargs,
                "gate_id": self.gate_id,
                "database_url": self.database_url,
                "approval_number": self.approval_number,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            if self.timeout_datetime and self.timeout_datetime < datetime.now(UTC):
                yield await self._handle_timeout()
                return
            event = await self._airflow_answer()
            if event is None:
                event = await self._check_gate()
            if event is not None:
                yield event
                return
            await asyncio.sleep(self.poke_interval)

    async def _check_gate(self) -> TriggerEvent | None:
        try:
            gate, decisions = await asyncio.to_thread(
                gate_and_decisions, self.database_url, self.gate_id
            )
        except RecordNotFound as exc:  # permanent: waiting longer cannot help
            return TriggerEvent(  # type: ignore[no-untyped-call]  # untyped upstream
                HITLTriggerEventFailurePayload(error=str(exc), error_type="unknown")
            )
        except Exception as exc:  # a DB blip must not end the wait: log it and poll again
            self.log.warning("reading gate %s failed, retrying: %s", self.gate_id, exc)
            return None
        why = settled_elsewhere(gate, decisions, self.approval_number, datetime.now(UTC))
        if why is None:
            return None
        self.log.info("[prodcontrol] answering the Airflow request: %s", why)
        params = self.params.dump()
        try:
            await sync_to_async(update_hitl_detail_response)(
                ti_id=self.ti_id,
                chosen_options=[DECIDED_ELSEWHERE],
                params_input={**params, "reason": why},
            )
        except Exception as exc:  # answered in Airflow meanwhile (409), or the API is down
            self.log.warning("[prodcontrol] Airflow kept its own answer or refused ours: %r", exc)
        return await self._airflow_answer()  # whatever Airflow recorded, once

    async def _airflow_answer(self) -> TriggerEvent | None:
        """HITLTrigger's read of the request: the answer recorded in Airflow, or ``None``."""
        event: TriggerEvent | None = await self._handle_response()  # type: ignore[no-untyped-call]  # untyped upstream
        return event
