"""The backend that keeps blobs in the application's database:
:class:`DatabaseBackend`."""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import datetime as dt
import typing as t

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite

from ..exceptions import StoreUnavailable
from ..tables import blob_table
from .backend import (
    FRESHEN_AFTER,
    UNAVAILABLE,
    BlobInfo,
    Executor,
    StoreBackend,
    batches,
    logger,
)

_INSERTS: dict[str, t.Callable[[sa.Table], t.Any]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


class DatabaseBackend(StoreBackend):
    """Blobs in the ``statemgr_blob`` table, on PostgreSQL or SQLite.

    Where the SQL runs, first match wins:

    1.  the ``session`` passed to a method: the write is part of the
        caller's transaction (or savepoint) and commits or rolls back with
        it;
    2.  the session the getter returns (such as Flask-SQLAlchemy's
        ``db.session``), likewise inside its current transaction, which the
        application commits;
    3.  a connection from the engine's pool, committed by the backend.

    Each operation checks out the worker's pooled connection, never a new
    one. That measured within 5% of holding one connection per thread (a
    checkout costs tens of µs, a committed write about a millisecond), and
    holding them would tie up a connection per thread of a threaded server.

    Writes are ``INSERT ... ON CONFLICT DO NOTHING``: an existing blob is not
    rewritten.

    :param engine_or_session_getter: an :class:`~sqlalchemy.Engine`, a
        callable that returns a session, or ``None`` if every call passes its
        own ``session``.
    """

    transactional = True

    def __init__(
        self,
        engine_or_session_getter: sa.Engine | t.Callable[[], Executor] | None = None,
    ) -> None:
        self._engine: sa.Engine | None = None
        self._session_getter: t.Callable[[], Executor] | None = None
        if isinstance(engine_or_session_getter, sa.Engine):
            self._engine = engine_or_session_getter
        else:
            self._session_getter = engine_or_session_getter

    @contextlib.contextmanager
    def _executor(self, session: Executor | None, *, commit: bool) -> cabc.Generator[Executor, None, None]:
        try:
            if session is not None:
                yield session
            elif self._session_getter is not None:
                yield self._session_getter()
            elif self._engine is not None:
                with self._connection(self._engine, commit=commit) as connection:
                    yield connection
            else:
                raise RuntimeError(
                    "This DatabaseBackend has no engine or session getter; pass session= to every store call."
                )
        except exc.DBAPIError as e:
            if e.connection_invalidated:
                logger.error("The database store's connection was lost: %s", e)
                raise StoreUnavailable(UNAVAILABLE) from e
            raise

    @staticmethod
    @contextlib.contextmanager
    def _connection(engine: sa.Engine, *, commit: bool) -> cabc.Generator[sa.Connection, None, None]:
        """A pooled connection, in a transaction it commits if ``commit``."""
        try:
            connection = engine.connect()
        except exc.DBAPIError as e:
            logger.error("The database store is not reachable: %s", e)
            raise StoreUnavailable(UNAVAILABLE) from e
        with connection:
            if commit:
                with connection.begin():
                    yield connection
            else:
                yield connection

    def read(self, key: str, *, session: Executor | None = None) -> bytes | None:
        statement = sa.select(blob_table.c.data).where(blob_table.c.key == key)
        with self._executor(session, commit=False) as executor:
            data = executor.execute(statement).scalar_one_or_none()
        return None if data is None else bytes(data)

    def write(self, key: str, data: bytes, *, session: Executor | None = None) -> None:
        now = dt.datetime.now(dt.UTC)
        with self._executor(session, commit=True) as executor:
            insert = _INSERTS.get(_dialect(executor))
            if insert is None:
                raise NotImplementedError(
                    f"The database store supports PostgreSQL and SQLite, not"
                    f" {_dialect(executor)}; set STATEMGR_STORE to a Redis URL"
                    " or a directory."
                )
            statement = (
                insert(blob_table)
                .values(key=key, size=len(data), data=data, created_at=now)
                .on_conflict_do_nothing(index_elements=[blob_table.c.key])
                # Says whether the row went in (rowcount is not kept for
                # INSERT by every driver).
                .returning(blob_table.c.key)
            )
            if executor.execute(statement).first() is None:
                # Present already. Updating only when stale keeps the common
                # case free of row locks and writes.
                executor.execute(
                    sa.update(blob_table)
                    .where(blob_table.c.key == key)
                    .where(blob_table.c.created_at < now - FRESHEN_AFTER)
                    .values(created_at=now)
                )

    def delete(
        self,
        keys: cabc.Iterable[str],
        *,
        older_than: dt.datetime | None = None,
        session: Executor | None = None,
    ) -> list[str]:
        deleted: list[str] = []
        with self._executor(session, commit=True) as executor:
            for batch in batches(keys):
                statement = sa.delete(blob_table).where(blob_table.c.key.in_(batch))
                if older_than is not None:
                    # Checked by the DELETE itself: on PostgreSQL it waits
                    # for a transaction freshening the row and then sees its
                    # new time.
                    statement = statement.where(blob_table.c.created_at < _as_utc(older_than))
                result = executor.execute(statement.returning(blob_table.c.key))
                deleted.extend(result.scalars())
        return deleted

    def scan(self, *, session: Executor | None = None) -> cabc.Iterator[BlobInfo]:
        statement = sa.select(blob_table.c.key, blob_table.c.size, blob_table.c.created_at).execution_options(
            yield_per=1000
        )
        with self._executor(session, commit=False) as executor:
            for key, size, created_at in executor.execute(statement):
                yield BlobInfo(key, size, _as_utc(created_at))

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def _dialect(executor: Executor) -> str:
    if isinstance(executor, sa.Connection):
        return executor.dialect.name
    return executor.get_bind(clause=blob_table).dialect.name


def _as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back the naive UTC time it was given.
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
