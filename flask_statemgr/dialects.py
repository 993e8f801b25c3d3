"""Per-database settings the engine's guarantees depend on."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from sqlalchemy import event


def _sqlite_connect(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 5000")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def _sqlite_checkin(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    # A COMMIT refused with "database is locked" leaves the transaction open,
    # and the pool skips its rollback because SQLAlchemy counts the
    # transaction as ended; the next BEGIN on this connection would fail.
    if dbapi_connection is not None and dbapi_connection.in_transaction:
        dbapi_connection.rollback()


def configure_engine(engine: sa.Engine) -> None:
    """Make ``engine`` honour savepoints and concurrent writers correctly.

    Python's ``sqlite3`` (before 3.12's ``autocommit`` attribute) starts
    transactions lazily and lets ``SAVEPOINT`` open one, so releasing the
    outermost savepoint would commit; SQLAlchemy's documented remedy is to
    turn the driver's own handling off and emit ``BEGIN`` ourselves. A busy
    timeout makes a second writer wait for the first instead of failing.
    Other databases need nothing. Calling it twice is harmless.
    """
    if engine.dialect.name != "sqlite" or event.contains(engine, "begin", _sqlite_begin):
        return
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    event.listen(engine, "checkin", _sqlite_checkin)
    # connections opened before this call keep the old behaviour
    engine.dispose()
