"""The sender batches its store writes: one transaction per batch of answers, still once-only."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from slack_helpers import make_runtime

from prodcontrol.control.escalation.outbox import OutboxSender, to_message
from prodcontrol.evidence.records import NotificationIn
from prodcontrol.runtime import Runtime
from prodcontrol.testing import ManualClock
from prodcontrol.testing.slack_server import LocalSlackServer

PEOPLE = ["amara", "bruno", "chen", "dana", "emeka", "farah"]
LEASE = 30.0


def enqueue(rt: Runtime, count: int) -> list[str]:
    keys = [f"batch-{i:03d}" for i in range(count)]
    rt.store.enqueue(
        [
            NotificationIn(
                idempotency_key=key,
                recipient_kind="person",
                recipient=PEOPLE[i % len(PEOPLE)],
                payload={"text": f"message {key}", "model": "credit-limit-regressor"},
            )
            for i, key in enumerate(keys)
        ]
    )
    return keys


def test_a_claimed_batch_is_recorded_in_one_transaction(
    tmp_path: Path,
    database_url: str,
    slack_server: LocalSlackServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ManualClock()
    rt = make_runtime(tmp_path, database_url, clock, slack_server)
    keys = enqueue(rt, 12)
    batches: list[int] = []
    record = rt.store.record_attempts  # the real store call, counted
    monkeypatch.setattr(rt.store, "record_attempts", lambda b: batches.append(len(b)) or record(b))
    sender = OutboxSender(rt.store, rt.notifier, clock, lease_seconds=LEASE, workers=1, batch=12)
    report = sender.drain_once()
    assert (report.claimed, report.sent) == (12, 12)
    assert slack_server.posts_by_key() == dict.fromkeys(keys, 1)
    assert batches == [12]
    assert {n.status for n in rt.store.list_notifications()} == {"sent"}
    assert rt.store.verify().ok


def test_crash_after_a_batch_was_sent_sends_none_of_it_twice(
    tmp_path: Path, database_url: str, slack_server: LocalSlackServer
) -> None:
    clock = ManualClock()
    rt = make_runtime(tmp_path, database_url, clock, slack_server)
    keys = enqueue(rt, 6)
    # a sender claims a batch, Slack accepts part of it, the sender dies before recording any
    claimed = rt.store.claim_due_notifications(clock.now(), 10, LEASE)
    for notification in claimed[:4]:
        assert rt.notifier.send(to_message(notification)).ok
    clock.advance(timedelta(seconds=LEASE + 1))
    sender = OutboxSender(rt.store, rt.notifier, clock, lease_seconds=LEASE, workers=3)
    try:
        report = sender.drain()
    finally:
        sender.close()
    assert (report.already_sent, report.sent) == (4, 2)
    assert slack_server.posts_by_key() == dict.fromkeys(keys, 1)


def test_the_pipeline_delivers_everything_once_and_stops_cleanly(
    tmp_path: Path, database_url: str, slack_server: LocalSlackServer
) -> None:
    clock = ManualClock()
    rt = make_runtime(tmp_path, database_url, clock, slack_server)
    keys = enqueue(rt, 40)
    sender = OutboxSender(rt.store, rt.notifier, clock, lease_seconds=LEASE, workers=4, batch=8)
    stop = threading.Event()
    result = []
    worker = threading.Thread(target=lambda: result.append(sender.run(stop, poll_seconds=0.01)))
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(rt.store.list_notifications("sent")) < 40:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=60)
        sender.close()
    [report] = result
    assert (report.claimed, report.sent) == (40, 40)
    assert slack_server.posts_by_key() == dict.fromkeys(keys, 1)
    assert {n.status for n in rt.store.list_notifications()} == {"sent"}
