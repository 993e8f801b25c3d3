"""Per-database settings the engine's guarantees depend on, and what a
database takes that set-based statements use."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from sqlalchemy import event


def _sqlite_savepoint(connection: sa.Connection, name: str) -> None:
    # Python's sqlite3 (in its default, legacy transaction control) opens a
    # transaction only before INSERT, UPDATE, DELETE or REPLACE. A SAVEPOINT
    # sent outside one starts a transaction of its own, and releasing it
    # commits: the enclosing session could no longer roll it back. Open the
    # transaction first. Everything else keeps the driver's behaviour: no
    # BEGIN on every checkout (SQLAlchemy's "begin" recipe would hold a lock
    # from the first SELECT, and a second connection to an in-memory
    # database, which Flask-SQLAlchemy shares, fails with "cannot start a
    # transaction within a transaction").
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is not None and not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN")


def _sqlite_checkin(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    # A COMMIT refused with "database is locked" leaves the transaction open,
    # and the pool skips its rollback because SQLAlchemy counts the
    # transaction as ended; the next user of this connection would find
    # itself inside it.
    if dbapi_connection is not None and dbapi_connection.in_transaction:
        dbapi_connection.rollback()


def configure_engine(engine: sa.Engine) -> None:
    """Make ``engine`` honour savepoints on SQLite: a savepoint opens the
    transaction it belongs to, so releasing it never commits.

    Nothing else of the engine changes (no ``PRAGMA``, no isolation level):
    the app's own code behaves as it did. Other databases need nothing.
    Calling it twice is harmless.
    """
    if engine.dialect.name != "sqlite" or event.contains(engine, "savepoint", _sqlite_savepoint):
        return
    event.listen(engine, "savepoint", _sqlite_savepoint)
    event.listen(engine, "checkin", _sqlite_checkin)


def json_arrays(dialect: sa.Dialect) -> bool:
    """Whether set-based statements send their keys or rows to this
    database as one JSON array (``json_each``): SQLite from 3.38, where the
    JSON functions are always built in. One parameter, and the same text
    for any number of rows, where an ``IN`` or a multi-row ``VALUES`` of a
    thousand costs SQLAlchemy more to render and process than SQLite spends
    on the rows."""
    return dialect.name == "sqlite" and (dialect.server_version_info or ()) >= (3, 38)


def key_type(columns: t.Sequence[sa.ColumnElement[t.Any]]) -> type | None:
    """The Python type of a key of one column, for the arrays that carry
    keys (:func:`json_arrays`, PostgreSQL's): ``None`` for a key of several
    columns or a type that does not say."""
    try:
        return columns[0].type.python_type if len(columns) == 1 else None
    except NotImplementedError:
        return None
