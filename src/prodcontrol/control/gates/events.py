"""What a closed gate tells the rest of the loop: domain events through the store's outbox.

A decision that closes a gate, or its expiry, writes a ``gate_decided`` / ``gate_expired`` event
in the same transaction (:func:`closed_events`), so the change and the news of it commit
together or not at all. :func:`dispatch` then hands each event to its subscribers: right after
the commit in the process that decided (so Slack messages update and a waiting Prefect flow run
resumes at once), and on every escalation tick for whatever is left (a crash between commit and
dispatch, Prefect unreachable). An event is leased while handled, so two dispatchers never
handle it at the same moment; a subscriber that cannot finish (``Handled(done=False)``, or an
exception) has the event retried with backoff, and the subscribers that did finish are not
asked again; after ``max_attempts`` it is dead (logged; the ticker's own sweeps of decided gates
and paused runs still cover it). Subscribers are idempotent: an event may be handled twice,
never lost.

Nothing subscribes by being imported: the composition root (:mod:`prodcontrol.runtime`) builds
the list of subscribers and passes it in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prodcontrol.clock import Clock
from prodcontrol.errors import StoreConflict
from prodcontrol.evidence.port import EvidenceStore
from prodcontrol.evidence.records import DomainEvent, DomainEventIn, DomainEventKind, Gate

log = logging.getLogger(__name__)

GATE_CLOSED: frozenset[DomainEventKind] = frozenset({"gate_decided", "gate_expired"})
MAX_ATTEMPTS = 10
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 300.0
LEASE_S = 60.0


@dataclass(frozen=True)
class Handled:
    """A subscriber's answer: ``done``, or not yet (the event is retried), with a note."""

    done: bool = True
    note: str = ""


@dataclass(frozen=True)
class Subscriber:
    """One reaction to events of ``kinds``; ``name`` keys its answer in the event's result."""

    name: str
    kinds: frozenset[DomainEventKind]
    handle: Callable[[DomainEvent], Handled]


@dataclass
class DispatchReport:
    handled: int = 0
    retried: int = 0
    dead: list[str] = field(default_factory=list)


def closed_events(gate: Gate) -> list[DomainEventIn]:
    """The event a gate closing as ``gate.status`` writes in its transaction (none if pending)."""
    if gate.status == "pending":
        return []
    kind: DomainEventKind = "gate_expired" if gate.status == "expired" else "gate_decided"
    return [
        DomainEventIn(
            kind=kind,
            key=f"{kind}:{gate.id}",
            gate_id=gate.id,
            model=gate.model,
            payload={
                "status": gate.status,
                "model_version": gate.model_version,
                "gate_kind": gate.kind,
                "flow_run_id": gate.flow_run_id,
            },
        )
    ]


def dispatch(
    store: EvidenceStore,
    subscribers: Sequence[Subscriber],
    clock: Clock,
    *,
    gate_id: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> DispatchReport:
    """Hand every due event (only ``gate_id``'s, when given) to its subscribers; never raises
    for a subscriber's failure (the event is retried instead)."""
    report = DispatchReport()
    for event in store.claim_domain_events(clock.now(), gate_id=gate_id, lease_seconds=LEASE_S):
        result = _handle(event, subscribers)
        try:
            if all(answer["done"] for answer in result.values()):
                store.settle_domain_event(event.id, "done", result)
                report.handled += 1
            elif event.attempts + 1 >= max_attempts:
                store.settle_domain_event(event.id, "dead", result)
                log.error("domain event %s (%s) is dead: %s", event.id, event.kind, result)
                report.dead.append(event.id)
            else:
                wait_s = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**event.attempts)
                retry_at = clock.now() + timedelta(seconds=wait_s)
                store.settle_domain_event(event.id, "pending", result, retry_at=retry_at)
                report.retried += 1
        except StoreConflict:  # our lease ran out and another dispatcher took it over
            log.warning("domain event %s was taken over by another dispatcher", event.id)
    return report


def _handle(event: DomainEvent, subscribers: Sequence[Subscriber]) -> dict[str, Any]:
    """Ask each subscriber that has not finished with the event yet; their answers by name."""
    result: dict[str, Any] = dict(event.result)
    for subscriber in subscribers:
        if event.kind not in subscriber.kinds:
            continue
        earlier = result.get(subscriber.name)
        if isinstance(earlier, dict) and earlier.get("done"):
            continue
        try:
            answer = subscriber.handle(event)
        except Exception as exc:  # an outside system or a bug: recorded, retried later
            log.exception("subscriber %s failed on domain event %s", subscriber.name, event.id)
            answer = Handled(done=False, note=f"{type(exc).__name__}: {exc}")
        result[subscriber.name] = {"done": answer.done, "note": answer.note}
    return result
