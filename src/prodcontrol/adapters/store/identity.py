"""SqlIdentityStore: personal tokens, the replay cache and decision credentials in SQL.

Same database as the evidence (SQLite or PostgreSQL), its own tables, outside the hash chain:
the events that matter (a token issued or revoked, a decision's credential) are logged by the
use cases in :mod:`prodcontrol.identity.service` through the evidence store.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from prodcontrol.adapters.store.engine import make_engine, unreachable_as_error, writer
from prodcontrol.adapters.store.tables import (
    DecisionCredentialRow,
    PersonalTokenRow,
    SeenRequestRow,
)
from prodcontrol.identity.tokens import PersonalToken

FIELDS = tuple(PersonalToken.model_fields)


def _token(row: PersonalTokenRow) -> PersonalToken:
    return PersonalToken(**{name: getattr(row, name) for name in FIELDS})


class SqlIdentityStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = make_engine(url)
        self._writer = writer(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    def add_token(self, token: PersonalToken) -> None:
        with unreachable_as_error(self.url), Session(self._writer) as session, session.begin():
            session.add(PersonalTokenRow(**token.model_dump()))

    def get_token(self, token_id: str) -> PersonalToken | None:
        with unreachable_as_error(self.url), Session(self._engine) as session:
            row = session.get(PersonalTokenRow, token_id)
            return _token(row) if row is not None else None

    def list_tokens(self) -> list[PersonalToken]:
        with unreachable_as_error(self.url), Session(self._engine) as session:
            rows = session.scalars(
                select(PersonalTokenRow).order_by(PersonalTokenRow.issued_at.desc())
            )
            return [_token(r) for r in rows]

    def revoke_token(self, token_id: str, by: str, at: datetime) -> PersonalToken | None:
        with unreachable_as_error(self.url), Session(self._writer) as session, session.begin():
            row = session.get(PersonalTokenRow, token_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at, row.revoked_by = at, by
                session.flush()
            return _token(row)

    def first_time(self, key: str, now: datetime, keep_seconds: int) -> bool:
        try:
            with (
                unreachable_as_error(self.url),
                Session(self._writer) as session,
                session.begin(),
            ):
                cutoff = now - timedelta(seconds=keep_seconds)
                session.execute(delete(SeenRequestRow).where(SeenRequestRow.seen_at < cutoff))
                session.add(SeenRequestRow(key=key, seen_at=now))
        except IntegrityError:
            return False
        return True

    def credentials_on(self, gate_id: str) -> list[tuple[str, str]]:
        with unreachable_as_error(self.url), Session(self._engine) as session:
            rows = session.scalars(
                select(DecisionCredentialRow).where(DecisionCredentialRow.gate_id == gate_id)
            )
            return [(r.person, r.credential) for r in rows]

    def note_credential(self, gate_id: str, person: str, credential: str, at: datetime) -> None:
        row = DecisionCredentialRow(gate_id=gate_id, person=person, credential=credential, at=at)
        try:
            with (
                unreachable_as_error(self.url),
                Session(self._writer) as session,
                session.begin(),
            ):
                session.add(row)
        except IntegrityError:
            return  # this person's credential on this gate is already noted
