"""ProdControlGateTrigger: waits in the triggerer on gate records in the evidence store.

The evidence store is the source of truth (DESIGN §4): a decision made in Slack, the CLI, the
web page or the Airflow UI writes the gate record, and this trigger sees it on its next poll.
It holds no worker slot; it only reads. Expiring a gate and applying the tier's timeout action
happen back in the operator, through the core, so the triggerer never writes evidence.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from prodcontrol.evidence.port import RecordNotFound
from prodcontrol.evidence.records import Gate


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
