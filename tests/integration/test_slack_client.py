"""The real slack-sdk client (through SlackNotifier) against the local Slack Web API server."""

from __future__ import annotations

import time

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from prodcontrol.adapters.slack import SlackNotifier
from prodcontrol.catalog.schema import Person
from prodcontrol.errors import UnreachableError
from prodcontrol.ports import OutboundMessage
from prodcontrol.testing.slack_server import LocalSlackServer

PEOPLE = {
    "chen": Person(id="chen", name="Chen Wei", slack_id="U0CHEN003", email="chen.wei@example.com"),
    "mail": Person(id="mail", name="Only Mail", email="only.mail@example.com"),
    "ghost": Person(id="ghost", name="Nobody", email="ghost@example.com"),
}


def notifier(server: LocalSlackServer, **kwargs: object) -> SlackNotifier:
    return SlackNotifier(
        server.token,
        people=PEOPLE,
        base_url=server.base_url,
        retries=2,
        backoff=0.01,
        **kwargs,  # type: ignore[arg-type]
    )


def dm(key: str, person: str = "chen") -> OutboundMessage:
    return OutboundMessage(
        idempotency_key=key,
        recipient_kind="person",
        recipient=person,
        text=f"text {key}",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": key}}],
    )


def test_auth_test_and_a_bad_token(slack_server: LocalSlackServer) -> None:
    assert notifier(slack_server).check()["user_id"] == "U0BOT"
    bad = SlackNotifier("xoxb-wrong", people=PEOPLE, base_url=slack_server.base_url)
    with pytest.raises(UnreachableError, match="invalid_auth"):
        bad.check()


def test_dm_opens_the_conversation_and_carries_the_key(slack_server: LocalSlackServer) -> None:
    slack = notifier(slack_server)
    delivery = slack.send(dm("k1"))
    assert delivery.ok and delivery.channel == "DU0CHEN003"
    assert slack_server.calls()["conversations.open"] == 1
    slack.send(dm("k2"))
    assert slack_server.calls()["conversations.open"] == 1  # cached
    assert slack_server.posts_by_key() == {"k1": 1, "k2": 1}


def test_channel_post_update_and_history(slack_server: LocalSlackServer) -> None:
    slack = notifier(slack_server)
    msg = OutboundMessage(
        idempotency_key="c1", recipient_kind="channel", recipient="#model-risk", text="hello"
    )
    sent = slack.send(msg)
    assert sent.ok and sent.channel and sent.ts
    assert slack.find_sent(msg) == sent.model_copy(
        update={"already_sent": True, "channel": "#model-risk"}
    )
    updated = slack.update(sent.channel, sent.ts, "decided", [])
    assert updated.ok
    assert slack_server.messages("#model-risk")[0]["text"] == "decided"
    other = msg.model_copy(update={"idempotency_key": "never-sent"})
    assert slack.find_sent(other) is None


def test_email_only_person_is_looked_up_once_and_recorded(slack_server: LocalSlackServer) -> None:
    class Events:
        def __init__(self) -> None:
            self.seen: list[tuple[str, str, dict[str, object]]] = []

        def record_event(
            self,
            kind: str,
            subject_type: str,
            subject_id: str,
            model: object,
            payload: dict[str, object],
        ) -> None:
            self.seen.append((kind, subject_id, payload))

    slack_server.add_user("only.mail@example.com", "U0MAIL001")
    events = Events()
    slack = notifier(slack_server, store=events)
    assert slack.send(dm("m1", "mail")).channel == "DU0MAIL001"
    assert slack.send(dm("m2", "mail")).ok
    assert slack_server.calls()["users.lookupByEmail"] == 1
    assert events.seen == [
        (
            "slack.user_resolved",
            "mail",
            {
                "email": "only.mail@example.com",
                "slack_id": "U0MAIL001",
                "via": "users.lookupByEmail",
            },
        )
    ]
    assert slack.person_for("U0MAIL001") == "mail"
    missing = slack.send(dm("m3", "ghost"))
    assert not missing.ok and missing.error == "users_not_found"


def test_429_is_retried_after_retry_after(slack_server: LocalSlackServer) -> None:
    slack_server.inject("chat.postMessage", status=429, retry_after=1)
    started = time.monotonic()
    delivery = notifier(slack_server).send(dm("r1"))
    assert delivery.ok
    assert time.monotonic() - started >= 1.0  # slept Retry-After before the retry
    assert slack_server.faulted()["chat.postMessage"] == 1
    assert slack_server.posts_by_key() == {"r1": 1}


def test_429_beyond_the_retries_comes_back_with_retry_after(slack_server: LocalSlackServer) -> None:
    slack_server.inject("chat.postMessage", status=429, retry_after=0, times=5)
    delivery = notifier(slack_server).send(dm("r2"))
    assert not delivery.ok and delivery.status_code == 429 and delivery.retry_after == 0


def test_500_is_not_retried_blind_on_post_but_is_on_idempotent_calls(
    slack_server: LocalSlackServer,
) -> None:
    slack = notifier(slack_server)
    slack_server.inject("chat.postMessage", status=500)
    failed = slack.send(dm("s1"))
    assert not failed.ok and failed.status_code == 500
    slack_server.inject("conversations.history", status=500)
    assert slack.find_sent(dm("s1")) is None  # retried inside the client, then answered
    slack_server.inject("chat.update", status=500)
    sent = slack.send(dm("s2"))
    assert sent.channel and sent.ts and slack.update(sent.channel, sent.ts, "x", []).ok


def test_dropped_connections(slack_server: LocalSlackServer) -> None:
    slack = notifier(slack_server)
    slack_server.inject("conversations.open", drop=True)
    assert slack.send(dm("d1")).ok  # open is retried on a connection error
    slack_server.inject("chat.postMessage", drop=True, after_effect=True)
    lost_answer = slack.send(dm("d2"))
    assert not lost_answer.ok  # posted, but the answer never came: the outbox decides
    assert slack_server.posts_by_key()["d2"] == 1
    found = slack.find_sent(dm("d2"))
    assert found is not None and found.already_sent


def test_slow_answer_past_the_timeout_is_a_failure_not_a_hang(
    slack_server: LocalSlackServer,
) -> None:
    slack = SlackNotifier(
        slack_server.token, people=PEOPLE, base_url=slack_server.base_url, timeout=1, retries=0
    )
    slack.send(dm("warm"))
    slack_server.inject("chat.postMessage", delay=1.5)
    delivery = slack.send(dm("slow"))
    assert not delivery.ok and "timed out" in (delivery.error or "").lower()
    deadline = time.monotonic() + 5
    while "slow" not in slack_server.posts_by_key() and time.monotonic() < deadline:
        time.sleep(0.05)  # the server still posts it: the outbox would find it in the history
    assert slack_server.posts_by_key()["slow"] == 1


def test_views_open_for_the_waiver_modal(slack_server: LocalSlackServer) -> None:
    slack = notifier(slack_server)
    assert slack.open_view("trigger-1", {"type": "modal", "callback_id": "x"}).ok
    assert slack_server.views()[0]["trigger_id"] == "trigger-1"


def test_plain_web_client_sees_the_same_server(slack_server: LocalSlackServer) -> None:
    client = WebClient(token=slack_server.token, base_url=slack_server.base_url)
    assert client.auth_test()["ok"]
    opened = client.conversations_open(users="U0CHEN003")
    assert opened["channel"]["id"] == "DU0CHEN003"
    with pytest.raises(SlackApiError, match="users_not_found"):
        client.users_lookupByEmail(email="nobody@example.com")
