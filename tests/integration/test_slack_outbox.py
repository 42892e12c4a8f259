"""The outbox sender against the local Slack server: once-only across crashes, dead letters."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from slack_helpers import failing_finding, make_runtime

from prodcontrol.adapters.slack import OutboxFileNotifier
from prodcontrol.control.escalation import escalation
from prodcontrol.control.escalation.outbox import OutboxSender, to_message
from prodcontrol.evidence.records import NotificationIn
from prodcontrol.runtime import Runtime
from prodcontrol.testing import ManualClock
from prodcontrol.testing.slack_server import LocalSlackServer

LEASE = 30.0


def sender(rt: Runtime, **kwargs: object) -> OutboxSender:
    options: dict[str, object] = {"lease_seconds": LEASE, "workers": 1, "backoff_base": 5.0}
    options.update(kwargs)
    return OutboxSender(rt.store, rt.notifier, rt.clock, **options)  # type: ignore[arg-type]


def one_message(rt: Runtime, key: str = "k-1", person: str = "emeka") -> None:
    rt.store.enqueue(
        [
            NotificationIn(
                idempotency_key=key,
                recipient_kind="person",
                recipient=person,
                payload={"text": f"message {key}", "model": "credit-limit-regressor"},
            )
        ]
    )


def test_crash_between_sent_and_marked_sent_does_not_send_twice(
    tmp_path: Path, database_url: str, slack_server: LocalSlackServer
) -> None:
    clock = ManualClock()
    rt = make_runtime(tmp_path, database_url, clock, slack_server)
    one_message(rt)
    # a sender claims the row, Slack accepts the message, the sender dies before record_attempt
    [claimed] = rt.store.claim_due_notifications(clock.now(), 10, LEASE)
    assert rt.notifier.send(to_message(claimed)).ok
    assert rt.store.claim_due_notifications(clock.now(), 10, LEASE) == []  # still leased
    clock.advance(timedelta(seconds=LEASE + 1))
    report = sender(rt).drain()
    assert (report.sent, report.already_sent) == (0, 1)
    assert slack_server.posts_by_key() == {"k-1": 1}
    [row] = rt.store.list_notifications()
    assert row.status == "sent" and row.provider_ref["already_sent"] is True
    assert [a.error for a in rt.store.attempts_for(row.id)] == ["already sent"]


def test_lost_answer_is_retried_without_a_duplicate(
    tmp_path: Path, database_url: str, slack_server: LocalSlackServer
) -> None:
    clock = ManualClock()
    rt = make_runtime(tmp_path, database_url, clock, slack_server)
    one_message(rt)
    slack_server.inject("chat.postMessage", drop=True, after_effect=True)
    first = sender(rt).drain()
    assert first.retried == 1
    clock.advance(timedelta(seconds=10))
    second = sender(rt).drain()
    assert second.already_sent == 1
    assert slack_server.posts_by_key() == {"k-1": 1}
    [row] = rt.store.list_notifications()
    outcomes = [(a.outcome, a.error is not None) for a in rt.store.attempts_for(row.id)]
    assert outcomes == [("retry", True), ("ok", True)]


def test_429_and_500_then_sent_with_every_attempt_recorded(
    tmp_path: Path, database_url: str, slack_server: LocalSlackServer
) -> None:
    clock = ManualClock()
    rt = make_runtime(tmp_path, database_url, clock, slack_server)
    one_message(rt)
    slack_server.inject("chat.postMessage", status=500)
    assert sender(rt).drain().retried == 1
    [row] = rt.store.list_notifications()
    assert row.next_attempt_at == clock.now() + timedelta(seconds=5)  # backoff
    assert sender(rt).drain().claimed == 0  # not due yet
    clock.advance(timedelta(seconds=5))
    slack_server.inject("chat.postMessage", status=429, retry_after=0, times=3)
    assert sender(rt).drain().retried == 1  # the client's own 429 retries ran out
    clock.advance(timedelta(seconds=10))
    assert sender(rt).drain().sent == 1
    [row] = rt.store.list_notifications()
    codes = [a.status_code for a in rt.store.attempts_for(row.id)]
    assert codes == [500, 429, 200]
    assert slack_server.posts_by_key() == {"k-1": 1}


def test_dead_letter_after_n_attempts_moves_the_chain_on(
    tmp_path: Path, database_url: str, slack_server: LocalSlackServer
) -> None:
    clock = ManualClock()
    rt = make_runtime(tmp_path, database_url, clock, slack_server)
    finding = failing_finding(rt)
    escalation.after_run(rt, finding.run_id)
    slack_server.inject("chat.postMessage", status=500, times=3)
    out = sender(rt, max_attempts=3, backoff_base=1.0)
    for _ in range(3):
        out.drain()
        clock.advance(timedelta(seconds=5))
    [dead] = rt.store.list_notifications(status="dead")
    assert dead.recipient == "emeka" and dead.attempts == 3
    result = escalation.tick(rt)
    assert result.dead_moved == 1  # dana is told now, not in 4 hours
    assert sender(rt).drain().sent == 1
    assert [m["channel"] for m in slack_server.messages()] == ["DU0DANA004"]
    assert escalation.tick(rt).dead_moved == 0  # once only


def test_permanent_error_is_dead_at_once(
    tmp_path: Path, database_url: str, slack_server: LocalSlackServer
) -> None:
    clock = ManualClock()
    rt = make_runtime(tmp_path, database_url, clock, slack_server)
    one_message(rt, person="nobody-in-people-yaml")
    report = sender(rt).drain()
    assert len(report.dead) == 1
    [dead] = rt.store.list_notifications(status="dead")
    assert (dead.last_error or "").startswith("unknown_person")


def test_terminal_outbox_prints_once_and_appends_to_the_file(
    tmp_path: Path, sqlite_url: str
) -> None:
    clock = ManualClock()
    rt = make_runtime(tmp_path, sqlite_url, clock)
    printed: list[str] = []
    notifier = rt.notifier
    assert isinstance(notifier, OutboxFileNotifier)
    notifier.echo = printed.append
    finding = failing_finding(rt)
    escalation.after_run(rt, finding.run_id)
    [claimed] = rt.store.claim_due_notifications(clock.now(), 10, LEASE)
    notifier.send(to_message(claimed))  # then "crash" before marking it sent
    clock.advance(timedelta(seconds=LEASE + 1))
    report = sender(rt).drain()
    assert report.already_sent == 1 and len(printed) == 1
    assert "credit-limit-regressor v3 (medium tier, production)" in printed[0]
    assert "[Approve]" not in printed[0]  # no gate yet: no decision buttons
    assert rt.settings.outbox_file.read_text().count('"key"') == 1
