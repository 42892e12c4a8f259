"""Notifiers: Slack through slack-sdk's ``WebClient``, and the terminal/file outbox without a token.

Both implement :class:`prodcontrol.ports.Notifier` plus ``find_sent`` (did a message with this
idempotency key already go out?), which the outbox sender asks before re-sending a message that
may have been sent by a sender that crashed before it could mark it sent.

Slack retries: ``RateLimitErrorRetryHandler`` honours ``Retry-After`` on every call. Calls that
are safe to repeat (``conversations.open``/``history``, ``users.lookupByEmail``, ``chat.update``,
``auth.test``) also retry 5xx and connection errors with exponential backoff inside the client.
``chat.postMessage`` does not: after a 5xx or a broken connection Slack may have posted it, so
the failure goes back to the outbox, which backs off and checks the history before resending.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator

from prodcontrol.catalog.schema import Person
from prodcontrol.control.escalation.messages import plain_text
from prodcontrol.errors import UnreachableError, UsageError
from prodcontrol.evidence.port import EvidenceStore
from prodcontrol.ports import Delivery, OutboundMessage

METADATA_EVENT = "prodcontrol_notification"
HISTORY_LIMIT = 200


def message_metadata(key: str) -> dict[str, Any]:
    """Slack message metadata carrying the idempotency key (read back by ``find_sent``)."""
    return {"event_type": METADATA_EVENT, "event_payload": {"idempotency_key": key}}


class SlackNotifier:
    """Direct messages and channel posts through the Slack Web API."""

    def __init__(
        self,
        token: SecretStr | str,
        *,
        people: Mapping[str, Person],
        base_url: str = "https://slack.com/api/",
        store: EvidenceStore | None = None,
        timeout: int = 10,
        retries: int = 3,
        backoff: float = 0.5,
    ) -> None:
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        backoff_calc = BackoffRetryIntervalCalculator(backoff_factor=backoff)
        rate = RateLimitErrorRetryHandler(max_retry_count=retries)
        self.base_url = base_url
        self.client = WebClient(
            token=secret,
            base_url=base_url,
            timeout=timeout,
            retry_handlers=[
                rate,
                ServerErrorRetryHandler(max_retry_count=retries, interval_calculator=backoff_calc),
                ConnectionErrorRetryHandler(
                    max_retry_count=retries, interval_calculator=backoff_calc
                ),
            ],
        )
        self.post_client = WebClient(
            token=secret, base_url=base_url, timeout=timeout, retry_handlers=[rate]
        )
        self.people = people
        self.store = store
        self._users: dict[str, str] = {}
        self._dms: dict[str, str] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ Notifier

    def send(self, message: OutboundMessage) -> Delivery:
        try:
            channel = self.channel_for(message)
            response = self.post_client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks or None,
                metadata=message_metadata(message.idempotency_key),
                unfurl_links=False,
            )
        except _CallFailed as exc:
            return exc.delivery
        except SlackApiError as exc:
            return _api_failure(exc)
        except (OSError, ValueError) as exc:
            return Delivery(ok=False, error=f"{type(exc).__name__}: {exc}")
        return Delivery(ok=True, channel=str(response["channel"]), ts=str(response["ts"]))

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> Delivery:
        try:
            response = self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        except SlackApiError as exc:
            return _api_failure(exc)
        except (OSError, ValueError) as exc:
            return Delivery(ok=False, error=f"{type(exc).__name__}: {exc}")
        return Delivery(ok=True, channel=str(response["channel"]), ts=str(response["ts"]))

    def find_sent(self, message: OutboundMessage) -> Delivery | None:
        """The message already posted under this key, from the conversation's recent history.

        Raises nothing: when the history cannot be read the caller must not send blind, so
        a failed look-up comes back as a failed Delivery.
        """
        try:
            channel = self.channel_for(message)
            response = self.client.conversations_history(
                channel=channel, limit=HISTORY_LIMIT, include_all_metadata=True
            )
        except _CallFailed as exc:
            return exc.delivery
        except SlackApiError as exc:
            return _api_failure(exc)
        except (OSError, ValueError) as exc:
            return Delivery(ok=False, error=f"history unreadable: {type(exc).__name__}: {exc}")
        for item in response.get("messages") or []:
            payload = (item.get("metadata") or {}).get("event_payload") or {}
            if payload.get("idempotency_key") == message.idempotency_key:
                return Delivery(ok=True, channel=channel, ts=str(item["ts"]), already_sent=True)
        return None

    # ------------------------------------------------------------------ look-ups

    def check(self) -> dict[str, Any]:
        """``auth.test``: the token works; UnreachableError saying how to fix it otherwise."""
        try:
            return dict(self.client.auth_test().data)  # type: ignore[arg-type]
        except SlackApiError as exc:
            raise UnreachableError(
                "Slack",
                self.base_url,
                str(exc.response.get("error")),
                "check PRODCONTROL_SLACK_BOT_TOKEN (a bot token, xoxb-...)",
            ) from None
        except OSError as exc:
            raise UnreachableError(
                "Slack", self.base_url, str(exc), "check PRODCONTROL_SLACK_BASE_URL and the network"
            ) from None

    def channel_for(self, message: OutboundMessage) -> str:
        """A channel as given (name or id), or a person's DM channel (``conversations.open``)."""
        if message.recipient_kind == "channel":
            return message.recipient
        user = self.user_id(message.recipient)
        with self._lock:
            if user in self._dms:
                return self._dms[user]
        response = self._call(lambda: self.client.conversations_open(users=user))
        channel = str(response["channel"]["id"])
        with self._lock:
            self._dms[user] = channel
        return channel

    def user_id(self, person_id: str) -> str:
        """A person's Slack id: people.yaml, else ``users.lookupByEmail`` (cached, recorded)."""
        person = self.people.get(person_id)
        if person is None:
            raise _CallFailed(
                Delivery(ok=False, error=f"unknown_person: {person_id!r} is not in people.yaml")
            )
        if person.slack_id:
            return person.slack_id
        with self._lock:
            if person_id in self._users:
                return self._users[person_id]
        email = person.email or ""
        response = self._call(lambda: self.client.users_lookupByEmail(email=email))
        user = str(response["user"]["id"])
        with self._lock:
            self._users[person_id] = user
        if self.store is not None:
            self.store.record_event(
                "slack.user_resolved",
                "person",
                person_id,
                None,
                {"email": email, "slack_id": user, "via": "users.lookupByEmail"},
            )
        return user

    def person_for(self, slack_user: str) -> str | None:
        """The person id behind a Slack user id (people.yaml, or a look-up done earlier)."""
        for person in self.people.values():
            if person.slack_id == slack_user:
                return person.id
        with self._lock:
            return next((p for p, u in self._users.items() if u == slack_user), None)

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> Delivery:
        try:
            self.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:
            return _api_failure(exc)
        except (OSError, ValueError) as exc:
            return Delivery(ok=False, error=f"{type(exc).__name__}: {exc}")
        return Delivery(ok=True)

    def _call(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except SlackApiError as exc:
            raise _CallFailed(_api_failure(exc)) from None
        except (OSError, ValueError) as exc:
            raise _CallFailed(Delivery(ok=False, error=f"{type(exc).__name__}: {exc}")) from None


class _CallFailed(Exception):
    def __init__(self, delivery: Delivery) -> None:
        super().__init__(delivery.error)
        self.delivery = delivery


def _api_failure(exc: SlackApiError) -> Delivery:
    response = exc.response
    status = int(getattr(response, "status_code", 0) or 0) or None
    headers = getattr(response, "headers", {}) or {}
    retry = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if isinstance(retry, list):
        retry = retry[0] if retry else None
    error = response.get("error") if isinstance(response.data, dict) else None
    return Delivery(
        ok=False,
        status_code=status,
        retry_after=float(retry) if retry is not None else None,
        error=str(error or f"HTTP {status}"),
    )


# --------------------------------------------------------------------------- no token: outbox


class OutboxFileNotifier:
    """The embedded default: each message is printed (through ``echo``) and appended to a file.

    The file holds one JSON object per line (``key``, ``recipient``, ``text``, ``rendered``), so
    ``find_sent`` can tell a message was already written and nothing is shown twice.
    """

    def __init__(self, path: Path, echo: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.echo = echo
        self._lock = threading.Lock()

    def send(self, message: OutboundMessage) -> Delivery:
        rendered = plain_text(message.text, message.blocks)
        to = ("@" if message.recipient_kind == "person" else "") + message.recipient
        entry = {
            "key": message.idempotency_key,
            "recipient": to,
            "text": message.text,
            "rendered": rendered,
        }
        ts = self._append(entry)
        if self.echo is not None:
            self.echo(f"--- to {to}\n{rendered}")
        return Delivery(ok=True, channel=to, ts=ts)

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> Delivery:
        rendered = plain_text(text, blocks)
        self._append({"update": ts, "recipient": channel, "text": text, "rendered": rendered})
        if self.echo is not None:
            self.echo(f"--- update of message {ts} to {channel}\n{rendered}")
        return Delivery(ok=True, channel=channel, ts=ts)

    def find_sent(self, message: OutboundMessage) -> Delivery | None:
        if not self.path.is_file():
            return None
        with self._lock, self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash was never shown as sent
                if entry.get("key") == message.idempotency_key:
                    return Delivery(
                        ok=True, channel=entry.get("recipient"), ts=f"{number}.0", already_sent=True
                    )
        return None

    def _append(self, entry: dict[str, Any]) -> str:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self.path.open("a+", encoding="utf-8") as handle:
                handle.seek(0)
                number = sum(1 for _ in handle) + 1
                handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise UsageError(
                f"cannot write the outbox file {self.path}: {exc}; check PRODCONTROL_STATE_DIR"
            ) from exc
        return f"{number}.0"
