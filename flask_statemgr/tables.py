"""The SQL tables the extension owns: transition history and stored blobs.

They live on a private :class:`~sqlalchemy.MetaData` and are copied into the
host models' metadata when a manager is bound, so ``db.create_all()`` and
Alembic's autogenerate see them without any extra step.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata: sa.MetaData = sa.MetaData()

# SQLite only autoincrements an INTEGER PRIMARY KEY, not a BIGINT one.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

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
    sa.Index("ix_statemgr_history_object", "model", "object_id", "id"),
    sa.Index("ix_statemgr_history_user", "user_id"),
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
