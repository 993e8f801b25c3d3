"""The audit history: one :class:`TransitionRecord` per performed step."""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import typing as t

import sqlalchemy as sa

# not ``from sqlalchemy import orm``: pyright --verifytypes then types
# the session alias below as unknown (microsoft/pyright#11196)
import sqlalchemy.orm as orm

from .dialects import json_arrays
from .exceptions import BlobNotFound, CorruptBlobError
from .identity import object_identity
from .runtime import current_runtime
from .tables import history_table
from .typing import SessionLike

logger: logging.Logger = logging.getLogger(__name__)

if t.TYPE_CHECKING:
    from .results import Step
    from .runtime import Runtime
    from .store import DataStore


@dataclasses.dataclass(frozen=True, slots=True)
class TransitionRecord:
    """One performed transition (or cascaded step).

    ``payload`` is what the user submitted, resolved from the data store;
    ``parent_id`` links a cascaded step to the record of the step that
    caused it. ``payload_error`` is ``"corrupt"`` or ``"missing"`` when the
    stored payload could not be read (a blob failed its hash check, or is
    gone); ``payload`` is then ``None``.

    .. versionadded:: 0.1
    """

    id: int
    model: str
    object_id: str
    manager: str
    transition: str
    source: str
    target: str
    user_id: str | None
    at: datetime.datetime
    payload: dict[str, t.Any] | None
    parent_id: int | None = None
    payload_error: t.Literal["corrupt", "missing"] | None = None

    def to_dict(self) -> dict[str, t.Any]:
        """A JSON-friendly form (the payload as stored values)."""
        data = dataclasses.asdict(self)
        data["at"] = self.at.isoformat()
        return data


#: in ``Session.info`` while the transaction holds records not yet announced
RECORDED = "statemgr.recorded"


def record_rows(
    session: orm.Session,
    steps: list[Step],
    level: list[Step],
    user_id: str | None,
    at: datetime.datetime,
    payload: dict[str, t.Any] | None,
    runtime: Runtime,
) -> list[dict[str, t.Any]]:
    """The history rows of one level of a plan, the payload stored (its
    blobs written through ``session``)."""
    # the commit announces them to open event streams
    session.info[RECORDED] = True
    stored = None
    if payload:
        inline = level[0].transition.metadata.get("inline_fields", ())
        stored = runtime.store.serialize_payload(payload, inline=inline, session=session)
    rows: list[dict[str, t.Any]] = []
    for step in level:
        parent = steps[step.parent].record if step.parent is not None else None
        rows.append(
            {
                "model": type(step.obj).__name__,
                "object_id": object_identity(step.obj),
                "manager": step.manager,
                "transition": step.transition.name,
                "source": step.source.name,
                "target": step.target.name,
                "user_id": user_id,
                "at": at,
                "payload": stored,
                "parent_id": parent.id if parent is not None else None,
            }
        )
    return rows


#: built once, so SQLAlchemy finds its compiled form by a cache key it
#: computed once too (about 60 µs a perform when built per call)
_INSERT_RECORDS = sa.insert(history_table).returning(
    history_table.c.id, history_table.c.model, history_table.c.object_id, history_table.c.manager
)


#: the columns every record of one :data:`_INSERT_JSON` shares
SHARED = ("model", "manager", "transition", "source", "target", "user_id", "at", "payload")


def _compile_insert_json() -> sa.Insert:
    """Records sharing :data:`SHARED` (bound by name) inserted from one
    JSON array of ``[object_id, parent_id]`` pairs, where
    :func:`~.dialects.json_arrays`: a multi-row ``VALUES`` costs SQLAlchemy
    ten parameters per record to process, twice the time SQLite spends on
    the rows."""
    c = history_table.c
    given = sa.func.json_each(sa.bindparam("_sm_records")).table_valued("value")
    record = sa.select(
        *(sa.bindparam(name, type_=c[name].type) for name in SHARED),
        sa.func.json_extract(given.c.value, "$[0]"),
        sa.func.json_extract(given.c.value, "$[1]"),
    ).select_from(given)
    return (
        sa.insert(history_table)
        .from_select([*(c[name] for name in SHARED), c.object_id, c.parent_id], record)
        .returning(c.id, c.model, c.object_id, c.manager)
    )


_INSERT_JSON = _compile_insert_json()


def insert_records(session: orm.Session, rows: list[dict[str, t.Any]], chunk: int) -> list[int]:
    """Insert rows from :func:`record_rows` (one multi-row statement per
    thousand or so; on SQLite one per ``chunk`` rows sharing
    :data:`SHARED`); their ids, in order."""
    # Ids are matched to rows by what identifies a record's object, not by
    # position: RETURNING in parameter order needs an insert sentinel, and
    # without one SQLAlchemy falls back to one INSERT per row on SQLite. A
    # plan visits each (object, manager) once, so the key is unique.
    if len(rows) == 1:
        # one row alone skips the many-rows machinery
        results: t.Iterable[t.Any] = session.execute(_INSERT_RECORDS, rows[0])
    elif json_arrays(session.get_bind(clause=history_table).dialect):
        groups: dict[tuple[t.Any, ...], list[dict[str, t.Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row[name] for name in SHARED), []).append(row)
        results = []
        for shared, group in groups.items():
            values = dict(zip(SHARED, shared))
            for start in range(0, len(group), chunk):
                pairs = json.dumps([[row["object_id"], row["parent_id"]] for row in group[start : start + chunk]])
                results.extend(session.execute(_INSERT_JSON, {**values, "_sm_records": pairs}))
    else:
        results = session.execute(_INSERT_RECORDS, rows)
    ids = {(model, object_id, manager): id_ for id_, model, object_id, manager in results}
    return [ids[row["model"], row["object_id"], row["manager"]] for row in rows]


def attach_records(
    level: list[Step], rows: list[dict[str, t.Any]], ids: list[int], payload: dict[str, t.Any] | None
) -> None:
    """Give each step of ``level`` its :class:`TransitionRecord`."""
    for step, row, id_ in zip(level, rows, ids):
        # what the history read gives back: no stored payload is None
        row["payload"] = payload if row["payload"] is not None else None
        step.record = TransitionRecord(id=id_, **row)


def _records(session: SessionLike, statement: sa.Select[t.Any], store: DataStore | None) -> list[TransitionRecord]:
    records = []
    for row in session.execute(statement).mappings():
        data: dict[str, t.Any] = dict(row)
        if data["payload"] is not None:
            store = store or current_runtime().store
            try:
                data["payload"] = store.resolve_payload(data["payload"], session=session)
            except (CorruptBlobError, BlobNotFound) as e:
                # one damaged blob may be shared by many records: each is
                # listed without its payload rather than failing the query
                data["payload_error"] = "missing" if isinstance(e, BlobNotFound) else "corrupt"
                data["payload"] = None
                logger.error("The payload of history record %s is unreadable: %s", data["id"], e)
        if data["at"].tzinfo is None:
            # SQLite keeps no time zone; every record is written in UTC
            data["at"] = data["at"].replace(tzinfo=datetime.UTC)
        records.append(TransitionRecord(**data))
    return records


#: what a :class:`TransitionRecord` holds: every column but the feed's
#: ordering key
_RECORD_COLUMNS = [column for column in history_table.c if column.key != "xact"]


def query_history(
    session: SessionLike,
    *,
    model: type | str | None = None,
    object_id: t.Any = None,
    manager: str | None = None,
    user_id: t.Any = None,
    after: int | None = None,
    limit: int | None = None,
    store: DataStore | None = None,
) -> list[TransitionRecord]:
    """Records matching every given filter, oldest first.

    :param model: a model class or its name.
    :param after: only records with a larger id (not an events cursor:
        records commit out of id order; see :mod:`flask_statemgr.events`).

    .. versionadded:: 0.1
    """
    statement = sa.select(*_RECORD_COLUMNS).order_by(history_table.c.id)
    if model is not None:
        statement = statement.where(history_table.c.model == (model if isinstance(model, str) else model.__name__))
    if object_id is not None:
        statement = statement.where(history_table.c.object_id == str(object_id))
    if manager is not None:
        statement = statement.where(history_table.c.manager == manager)
    if user_id is not None:
        statement = statement.where(history_table.c.user_id == str(user_id))
    if after is not None:
        statement = statement.where(history_table.c.id > after)
    if limit is not None:
        statement = statement.limit(limit)
    return _records(session, statement, store)


def object_history(obj: t.Any, manager: str | None = None) -> list[TransitionRecord]:
    """Every record of ``obj`` (for one manager, if given), oldest first."""
    state = sa.inspect(obj, raiseerr=False)
    session = state.session if state is not None else None
    if session is None:
        return []
    return query_history(session, model=type(obj), object_id=object_identity(obj), manager=manager)
