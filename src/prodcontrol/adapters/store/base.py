"""What every part of the SQL store shares: the engine, the clock, and how a call gets a
transaction (one per call, never spanning two calls)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from prodcontrol.adapters.store.engine import make_engine, unreachable_as_error, writer
from prodcontrol.adapters.store.tables import Base
from prodcontrol.adapters.store.transaction import WriteTx, to_record
from prodcontrol.clock import Clock, SystemClock
from prodcontrol.errors import StoreConflict
from prodcontrol.evidence.port import RecordNotFound
from prodcontrol.evidence.signing import SigningKey

T = TypeVar("T", bound=Base)
R = TypeVar("R", bound=BaseModel)


class StoreBase:
    """Opens read and write transactions against one database."""

    def __init__(
        self, url: str, clock: Clock | None = None, signer: SigningKey | None = None
    ) -> None:
        self.url = url
        self.clock: Clock = clock or SystemClock()
        self.signer = signer
        self._engine = make_engine(url)
        self._writer = writer(self._engine)

    def close(self) -> None:
        """Close pooled connections (tests and short-lived commands call it)."""
        self._engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[WriteTx]:
        """One write transaction, committed when the block ends without an exception.

        A constraint the database enforces (a duplicate key, a reference to a row that does not
        exist) surfaces as StoreConflict, after the whole transaction was rolled back.
        """
        try:
            with (
                unreachable_as_error(self.url),
                Session(self._writer, expire_on_commit=False, autoflush=False) as session,
                session.begin(),
            ):
                tx = WriteTx(session, self.clock.now(), self.signer)
                yield tx
                tx.finish()
        except IntegrityError as exc:
            detail = str(exc.orig).strip().splitlines()[0]
            raise StoreConflict(f"the evidence store refused the write: {detail}") from exc

    @contextmanager
    def _read(self, snapshot: bool = False) -> Iterator[Session]:
        """A read transaction; ``snapshot`` makes every query in it see the same instant.

        SQLite in WAL mode gives a read transaction one snapshot anyway; PostgreSQL needs
        REPEATABLE READ for that (its default sees each statement's own instant).
        """
        engine = self._engine
        if snapshot and engine.dialect.name == "postgresql":
            engine = engine.execution_options(isolation_level="REPEATABLE READ")
        with (
            unreachable_as_error(self.url),
            Session(engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    def _records(self, stmt: Select[tuple[T]], cls: type[R]) -> list[R]:
        """Run a query for rows and return them as records."""
        with self._read() as session:
            return [to_record(row, cls) for row in session.scalars(stmt)]

    def _record(self, row_cls: type[T], cls: type[R], kind: str, record_id: str) -> R:
        """One record by id, or RecordNotFound."""
        with self._read() as session:
            return to_record(self._get(session, row_cls, kind, record_id), cls)

    @staticmethod
    def _get(session: Session, row_cls: type[T], kind: str, record_id: str) -> T:
        row = session.get(row_cls, record_id, populate_existing=True)
        if row is None:
            raise RecordNotFound(kind, record_id)
        return row
