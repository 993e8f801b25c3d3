"""The events feed (DESIGN §6): the transitions after a cursor that the
current user may view, complete whatever order writers commit in.

A record id is handed out at insert, but transactions commit in any order:
on PostgreSQL a reader that has seen id 7 may later find id 6 committed, so
"every id above the last one seen" skips records. The feed therefore orders
records by the writing transaction (``xact``, set by the database) and then
id, and hands out only records whose transaction is older than every
transaction still running (the snapshot's ``xmin``): those are all
committed, so nothing can appear before them any more. This is the
commit-ordered reading of PostgreSQL outboxes and event stores; the
alternative, a settling window with gap tracking (Marten's "high water
mark"), must guess how long a gap may stay open. A record waits as long as
the oldest open write transaction. SQLite lets one writer at a time hold the database from its
first write to its commit, so ids are handed out in commit order there and
no record waits.

A cursor is ``"<xact>.<id>"``, the position of the last record read. A bare
number is read as a record id (the cursor before this format), so an
``after=`` kept by an old page still works.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import typing as t

import sqlalchemy as sa
from sqlalchemy import orm

from .exceptions import StateMgrError
from .i18n import gettext
from .tables import history_table, settled_below

#: what a cursor looks like: "<xact>.<id>", or a bare record id; 18 digits
#: keep both within a BIGINT, and no id or transaction gets that far
CURSOR = re.compile(r"(?:(\d{1,18})\.)?(\d{1,18})")
#: where a feed starts: before every record
START = "0.0"


class CursorError(StateMgrError):
    """An ``after=`` or ``Last-Event-ID`` that is not a cursor."""

    http_status = 400
    title = "Bad request"


@dataclasses.dataclass(frozen=True, slots=True)
class Position:
    """A place in the feed: after the record ``id`` of transaction
    ``xact``; ``xact`` is ``None`` for a bare record id."""

    xact: int | None
    id: int


def parse_cursor(text: str) -> Position:
    """The position a cursor names.

    :raises CursorError: when ``text`` is not one.
    """
    match = CURSOR.fullmatch(text)
    if match is None:
        raise CursorError(gettext("%(cursor)r is not a cursor from this feed", cursor=text))
    xact, id_ = match.groups()
    return Position(None if xact is None else int(xact), int(id_))


def _at(position: Position) -> sa.ColumnElement[bool]:
    c = history_table.c
    if position.xact is None:
        return c.id > position.id
    return sa.tuple_(c.xact, c.id) > sa.tuple_(sa.literal(position.xact), sa.literal(position.id))


def latest_cursor(session: t.Any) -> str:
    """The cursor past every record already committed for good: a page
    rendered now starts polling there."""
    c = history_table.c
    row = session.execute(
        sa.select(c.xact, c.id).where(c.xact < settled_below()).order_by(c.xact.desc(), c.id.desc()).limit(1)
    ).first()
    return START if row is None else cursor_of(row._mapping)


#: ``Session.info``: (transaction, cursor) of the last :func:`transaction_cursor`
_CURSOR = "statemgr_cursor"


def transaction_cursor(session: t.Any) -> str:
    """:func:`latest_cursor`, read once per transaction of ``session``, so
    a listing of many objects sends one query, not one per object. A cursor
    read earlier in the transaction is at worst older than the objects, and
    a client following the events from it is sent again what it already
    shows, never misses anything."""
    if isinstance(session, orm.scoped_session):
        session = session()
    transaction = session.get_transaction()
    cached = session.info.get(_CURSOR)
    if transaction is not None and cached is not None and cached[0] is transaction:
        return t.cast(str, cached[1])
    cursor = latest_cursor(session)
    # the read began the transaction if none was open
    session.info[_CURSOR] = (session.get_transaction(), cursor)
    return cursor


@dataclasses.dataclass(frozen=True, slots=True)
class Rows:
    """One read of the feed."""

    #: the settled records after the cursor, in feed order, hidden ones too
    rows: t.Sequence[sa.RowMapping]
    #: where the next read starts
    cursor: str
    #: records are committed past ``cursor`` that an older transaction
    #: still holds back: read again soon
    pending: bool
    #: the read stopped at its limit: more may follow at once
    more: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """The events of one read that the user may view."""

    #: JSON-ready events, each with the ``cursor`` just past it
    events: list[dict[str, t.Any]]
    cursor: str
    pending: bool
    more: bool


def cursor_of(row: sa.RowMapping) -> str:
    """The cursor just past the history row ``row``."""
    return f"{row['xact']}.{row['id']}"


def event_json(row: sa.RowMapping, model: str) -> dict[str, t.Any]:
    """The event of the history row ``row``, whose model is exposed as
    ``model``, as JSON-ready data."""
    at: datetime.datetime = row["at"]
    return {
        "id": row["id"],
        "model": model,
        "object_id": row["object_id"],
        "manager": row["manager"],
        "transition": row["transition"],
        "source": row["source"],
        "target": row["target"],
        # SQLite hands back the stored UTC time without its zone
        "at": (at if at.tzinfo is not None else at.replace(tzinfo=datetime.UTC)).isoformat(),
        "cursor": cursor_of(row),
    }


def read_rows(session: t.Any, after: str, limit: int) -> Rows:
    """The next ``limit`` settled records after the cursor ``after``.

    :raises CursorError: when ``after`` is not a cursor.
    """
    position = parse_cursor(after)
    c = history_table.c
    # the horizon comes from the statement's own snapshot, so every record
    # below it is visible to the same read
    rows = (
        session.execute(
            sa.select(history_table, (c.xact < settled_below()).label("settled"))
            .where(_at(position))
            .order_by(c.xact, c.id)
            .limit(limit)
        )
        .mappings()
        .all()
    )
    # records sort by transaction, so the settled ones come first
    settled = [row for row in rows if row["settled"]]
    cursor = cursor_of(settled[-1]) if settled else after
    return Rows(settled, cursor, pending=len(settled) < len(rows), more=len(settled) == limit)
