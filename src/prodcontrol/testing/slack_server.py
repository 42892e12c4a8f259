"""A local Slack Web API server: real HTTP on a loopback port, for tests, demos and benchmarks.

It speaks the methods prodcontrol uses (``auth.test``, ``chat.postMessage``, ``chat.update``,
``conversations.open``, ``conversations.history``, ``users.lookupByEmail``, ``views.open``) the
way slack-sdk's ``WebClient`` expects, so the real client is pointed at it with ``base_url``.
Faults are injected per test: 429 with ``Retry-After``, 500, slow answers, and dropped
connections (before or after the call took effect). It counts, on the server side, every message
posted under each idempotency key: the proof of "0 lost, 0 duplicated".

Usage::

    with LocalSlackServer(users={"chen.wei@example.com": "U0CHEN003"}) as slack:
        client = WebClient(token=slack.token, base_url=slack.base_url)
        slack.inject("chat.postMessage", status=429, retry_after=1)
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

METADATA_KEY = "idempotency_key"


@dataclass
class Fault:
    """One injected fault; ``method`` ``None`` matches every method."""

    method: str | None = None
    status: int | None = None
    retry_after: int = 1
    delay: float = 0.0
    drop: bool = False
    after_effect: bool = False
    times: int = 1


@dataclass
class _Message:
    channel: str
    ts: str
    text: str
    blocks: list[Any]
    metadata: dict[str, Any] | None
    edited: bool = False


@dataclass
class _State:
    token: str
    users: dict[str, str]
    lock: threading.Lock = field(default_factory=threading.Lock)
    messages: dict[str, list[_Message]] = field(default_factory=dict)
    channels_by_name: dict[str, str] = field(default_factory=dict)
    posts_by_key: Counter[str] = field(default_factory=Counter)
    accepted_at: dict[str, float] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    faulted: Counter[str] = field(default_factory=Counter)
    faults: list[Fault] = field(default_factory=list)
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_methods: frozenset[str] | None = None
    slow: float = 0.0
    views: list[dict[str, Any]] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    last_ts: float = 0.0


class LocalSlackServer:
    """The Web API on ``127.0.0.1:<free port>``, in a background thread."""

    def __init__(self, token: str = "xoxb-local-test", users: dict[str, str] | None = None) -> None:
        self.token = token
        self.state = _State(token=token, users=dict(users or {}))
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LocalSlackServer:
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> LocalSlackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() the server first"
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """What to pass as ``WebClient(base_url=...)`` (trailing slash included)."""
        return f"http://127.0.0.1:{self.port}/api/"

    # ------------------------------------------------------------------ test controls

    def add_user(self, email: str, user_id: str) -> None:
        with self.state.lock:
            self.state.users[email] = user_id

    def inject(self, method: str | None = None, **fault: Any) -> None:
        """Queue a fault for the next matching call(s); see :class:`Fault` for the fields."""
        with self.state.lock:
            self.state.faults.append(Fault(method=method, **fault))

    def set_fault_rates(
        self,
        rate_429: float = 0.0,
        rate_500: float = 0.0,
        *,
        methods: set[str] | None = None,
        slow: float = 0.0,
        seed: int = 7,
    ) -> None:
        """Answer a random share of calls with 429 / 500 (and every call after ``slow`` s)."""
        with self.state.lock:
            self.state.rate_429, self.state.rate_500, self.state.slow = rate_429, rate_500, slow
            self.state.rate_methods = frozenset(methods) if methods else None
            self.state.rng = random.Random(seed)

    def reset(self) -> None:
        """Forget messages, counts and faults (users stay)."""
        with self.state.lock:
            self.state.messages.clear()
            self.state.posts_by_key.clear()
            self.state.accepted_at.clear()
            self.state.calls.clear()
            self.state.faulted.clear()
            self.state.faults.clear()
            self.state.views.clear()
            self.state.rate_429 = self.state.rate_500 = self.state.slow = 0.0

    # ------------------------------------------------------------------ what happened

    def posts_by_key(self) -> Counter[str]:
        """How many messages were posted under each idempotency key (from message metadata)."""
        with self.state.lock:
            return Counter(self.state.posts_by_key)

    def accepted_at(self) -> dict[str, float]:
        """Wall-clock time (``time.time()``) each key was first accepted."""
        with self.state.lock:
            return dict(self.state.accepted_at)

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self.state.lock:
            channels = [channel] if channel else list(self.state.messages)
            found = []
            for name in channels:
                cid = self.state.channels_by_name.get(name, name)
                for m in self.state.messages.get(cid, []):
                    found.append(
                        {
                            "channel": m.channel,
                            "ts": m.ts,
                            "text": m.text,
                            "blocks": m.blocks,
                            "metadata": m.metadata,
                            "edited": m.edited,
                        }
                    )
            return found

    def calls(self) -> Counter[str]:
        with self.state.lock:
            return Counter(self.state.calls)

    def faulted(self) -> Counter[str]:
        """How many calls per method were answered with an injected fault."""
        with self.state.lock:
            return Counter(self.state.faulted)

    def views(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.views)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A dropped connection (injected on purpose) is not worth a traceback on stderr."""


class _Handler(BaseHTTPRequestHandler):
    state: _State
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read the counters, not the access log."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    # ------------------------------------------------------------------ plumbing

    def _handle(self) -> None:
        url = urlparse(self.path)
        method = url.path.rsplit("/", 1)[-1]
        args = self._args(url.query)
        fault = self._fault_for(method)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if self.state.slow:
            time.sleep(self.state.slow)
        if fault is not None and fault.drop and not fault.after_effect:
            self._drop()
            return
        if fault is not None and fault.status is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
            error = "ratelimited" if fault.status == 429 else "internal_error"
            self._reply(fault.status, {"ok": False, "error": error}, headers)
            return
        if self.headers.get("Authorization", "") != f"Bearer {self.state.token}":
            self._reply(200, {"ok": False, "error": "invalid_auth"})
            return
        with self.state.lock:
            self.state.calls[method] += 1
        handler = getattr(self, "api_" + method.replace(".", "_"), None)
        body = handler(args) if handler else {"ok": False, "error": "unknown_method"}
        if fault is not None and fault.drop:
            self._drop()
            return
        self._reply(200, body)

    def _args(self, query: str) -> dict[str, Any]:
        args: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if raw:
            if "json" in (self.headers.get("Content-Type") or ""):
                args.update(json.loads(raw))
            else:
                args.update({k: v[-1] for k, v in parse_qs(raw.decode()).items()})
        for key in ("blocks", "metadata"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        return args

    def _fault_for(self, method: str) -> Fault | None:
        state = self.state
        with state.lock:
            for fault in state.faults:
                if fault.method in (None, method):
                    fault.times -= 1
                    if fault.times <= 0:
                        state.faults.remove(fault)
                    state.faulted[method] += 1
                    return fault
            if state.rate_methods is None or method in state.rate_methods:
                draw = state.rng.random()
                if draw < state.rate_429:
                    state.faulted[method] += 1
                    return Fault(method=method, status=429, retry_after=1)
                if draw < state.rate_429 + state.rate_500:
                    state.faulted[method] += 1
                    return Fault(method=method, status=500)
        return None

    def _reply(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _drop(self) -> None:
        """Close the TCP connection without an answer (a reset, as a broken proxy would)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------------ the methods

    def _channel_id(self, channel: str) -> str:
        """Channel names (``#model-risk``) get a stable id the first time they are used."""
        if not channel.startswith("#"):
            return channel
        name = channel
        if name not in self.state.channels_by_name:
            self.state.channels_by_name[name] = f"C{len(self.state.channels_by_name) + 1:08d}"
        return self.state.channels_by_name[name]

    def _next_ts(self) -> str:
        now = max(time.time(), self.state.last_ts + 0.000001)
        self.state.last_ts = now
        return f"{now:.6f}"

    def api_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "http://127.0.0.1/",
            "team": "local",
            "user": "prodcontrol",
            "team_id": "T0LOCAL",
            "user_id": "U0BOT",
            "bot_id": "B0BOT",
        }

    def api_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        metadata = args.get("metadata") if isinstance(args.get("metadata"), dict) else None
        with self.state.lock:
            cid = self._channel_id(channel)
            message = _Message(
                cid,
                self._next_ts(),
                str(args.get("text") or ""),
                list(args.get("blocks") or []),
                metadata,
            )
            self.state.messages.setdefault(cid, []).append(message)
            key = ((metadata or {}).get("event_payload") or {}).get(METADATA_KEY)
            if key:
                self.state.posts_by_key[key] += 1
                self.state.accepted_at.setdefault(key, time.time())
        return {"ok": True, "channel": cid, "ts": message.ts, "message": {"text": message.text}}

    def api_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            cid = self._channel_id(str(args.get("channel") or ""))
            for message in self.state.messages.get(cid, []):
                if message.ts == args.get("ts"):
                    message.text = str(args.get("text") or message.text)
                    message.blocks = list(args.get("blocks") or [])
                    message.edited = True
                    return {"ok": True, "channel": cid, "ts": message.ts, "text": message.text}
        return {"ok": False, "error": "message_not_found"}

    def api_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = str(args.get("users") or "")
        if not users or "," in users:
            return {
                "ok": False,
                "error": "users_list_not_supplied" if not users else "not_supported",
            }
        return {"ok": True, "channel": {"id": f"D{users}"}}

    def api_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        limit = int(args.get("limit") or 100)
        oldest = float(args.get("oldest") or 0)
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        with self.state.lock:
            cid = self._channel_id(str(args.get("channel") or ""))
            found = [m for m in self.state.messages.get(cid, []) if float(m.ts) >= oldest]
        found.sort(key=lambda m: float(m.ts), reverse=True)
        page = []
        for m in found[:limit]:
            item: dict[str, Any] = {"type": "message", "ts": m.ts, "text": m.text}
            if with_metadata and m.metadata:
                item["metadata"] = m.metadata
            page.append(item)
        return {"ok": True, "messages": page, "has_more": len(found) > limit}

    def api_users_lookupByEmail(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email") or "")
        with self.state.lock:
            user = self.state.users.get(email)
        if user is None:
            return {"ok": False, "error": "users_not_found"}
        return {"ok": True, "user": {"id": user, "profile": {"email": email}}}

    def api_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        with self.state.lock:
            self.state.views.append({"trigger_id": args.get("trigger_id"), "view": view})
            number = len(self.state.views)
        return {"ok": True, "view": {"id": f"V{number:08d}"}}
