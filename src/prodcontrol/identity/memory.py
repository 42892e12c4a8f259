"""An in-memory :class:`~prodcontrol.identity.port.IdentityStore` for tests and embedders."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from prodcontrol.identity.tokens import PersonalToken


class InMemoryIdentityStore:
    def __init__(self) -> None:
        self._tokens: dict[str, PersonalToken] = {}
        self._seen: dict[str, datetime] = {}
        self._credentials: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()

    def add_token(self, token: PersonalToken) -> None:
        with self._lock:
            if token.id in self._tokens:
                raise ValueError(f"token {token.id} exists")
            self._tokens[token.id] = token

    def get_token(self, token_id: str) -> PersonalToken | None:
        return self._tokens.get(token_id)

    def list_tokens(self) -> list[PersonalToken]:
        return sorted(self._tokens.values(), key=lambda t: t.issued_at, reverse=True)

    def revoke_token(self, token_id: str, by: str, at: datetime) -> PersonalToken | None:
        with self._lock:
            token = self._tokens.get(token_id)
            if token is None or token.revoked_at is not None:
                return token
            token = token.model_copy(update={"revoked_at": at, "revoked_by": by})
            self._tokens[token_id] = token
            return token

    def first_time(self, key: str, now: datetime, keep_seconds: int) -> bool:
        with self._lock:
            cutoff = now - timedelta(seconds=keep_seconds)
            self._seen = {k: at for k, at in self._seen.items() if at >= cutoff}
            if key in self._seen:
                return False
            self._seen[key] = now
            return True

    def credentials_on(self, gate_id: str) -> list[tuple[str, str]]:
        return [(p, c) for g, p, c in self._credentials if g == gate_id]

    def note_credential(self, gate_id: str, person: str, credential: str, at: datetime) -> None:
        with self._lock:
            if not any(g == gate_id and p == person for g, p, _ in self._credentials):
                self._credentials.append((gate_id, person, credential))
