"""The SQL tables the extension owns: transition history and stored blobs.

They live on a private :class:`~sqlalchemy.MetaData` and are copied into the
host models' metadata when a manager is bound, so ``db.create_all()`` and
Alembic's autogenerate see them without any extra step.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

metadata: sa.MetaData = sa.MetaData()

# SQLite only autoincrements an INTEGER PRIMARY KEY, not a BIGINT one.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class current_xact(FunctionElement[int]):
    """The id of the writing transaction on PostgreSQL (``xid8`` as a
    bigint, which never wraps), ``0`` elsewhere: the events feed orders
    records by it (see :mod:`flask_statemgr.events`)."""

    type = sa.BigInteger()
    inherit_cache = True


class settled_below(FunctionElement[int]):
    """The oldest transaction still running on PostgreSQL: every record with
    a smaller :class:`current_xact` is committed or rolled back, so none can
    appear below it any more. Elsewhere writers commit in id order, so no
    record waits."""

    type = sa.BigInteger()
    inherit_cache = True


@compiles(current_xact)
def _current_xact(element: current_xact, compiler: t.Any, **kw: t.Any) -> str:
    return "0"


@compiles(current_xact, "postgresql")
def _current_xact_pg(element: current_xact, compiler: t.Any, **kw: t.Any) -> str:
    return "CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT)"


@compiles(settled_below)
def _settled_below(element: settled_below, compiler: t.Any, **kw: t.Any) -> str:
    return "9223372036854775807"


@compiles(settled_below, "postgresql")
def _settled_below_pg(element: settled_below, compiler: t.Any, **kw: t.Any) -> str:
    return "CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT)"


history_table: sa.Table = sa.Table(
    "statemgr_history",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("object_id", sa.String(64), nullable=False),
    sa.Column("manager", sa.String(64), nullable=False),
    sa.Column("transition", sa.String(64), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("target", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(64), nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=True),
    # The record of the transition whose cascade caused this one.
    sa.Column(
        "parent_id",
        _BigId,
        sa.ForeignKey("statemgr_history.id", ondelete="CASCADE"),
        nullable=True,
    ),
    # set by the database, so every way of inserting a record sets it
    sa.Column("xact", sa.BigInteger, nullable=False, server_default=sa.DefaultClause(current_xact())),
    sa.Index("ix_statemgr_history_object", "model", "object_id", "id"),
    sa.Index("ix_statemgr_history_user", "user_id"),
    sa.Index("ix_statemgr_history_feed", "xact", "id"),
    # an id is never handed out twice, even after the highest record is
    # deleted: a reader past it would skip the new one
    sqlite_autoincrement=True,
)

blob_table: sa.Table = sa.Table(
    "statemgr_blob",
    metadata,
    # "sha256:" + 64 hex digits
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def ensure_tables(target: sa.MetaData) -> None:
    """Copy the extension's tables into ``target`` unless already there."""
    for table in metadata.tables.values():
        if table.name not in target.tables:
            table.to_metadata(target)
