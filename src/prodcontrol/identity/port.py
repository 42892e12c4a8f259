"""The identity store port: personal tokens, the Slack replay cache, credentials per gate."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from prodcontrol.identity.tokens import PersonalToken


@runtime_checkable
class IdentityStore(Protocol):
    """Kept beside the evidence (same database) so it holds across restarts and replicas."""

    def add_token(self, token: PersonalToken) -> None: ...

    def get_token(self, token_id: str) -> PersonalToken | None: ...

    def list_tokens(self) -> list[PersonalToken]:
        """Every token, newest first."""
        ...

    def revoke_token(self, token_id: str, by: str, at: datetime) -> PersonalToken | None:
        """Mark the token revoked (a no-op on one already revoked); None when unknown."""
        ...

    def first_time(self, key: str, now: datetime, keep_seconds: int) -> bool:
        """True the first time ``key`` is offered within ``keep_seconds``; False on a replay."""
        ...

    def credentials_on(self, gate_id: str) -> list[tuple[str, str]]:
        """``(person, credential)`` of every decision taken on the gate so far."""
        ...

    def note_credential(self, gate_id: str, person: str, credential: str, at: datetime) -> None: ...
