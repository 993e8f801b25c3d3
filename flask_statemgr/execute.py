"""Executing a checked plan all or nothing: signals, execute hooks, a
compare-and-set of the state column per level and chunk of objects, and the
history records; inside one savepoint, or a transaction that holds nothing
else.
"""

from __future__ import annotations

import datetime
import json
import typing as t
import weakref

import sqlalchemy as sa
from sqlalchemy import event, exc, orm
from sqlalchemy.orm.attributes import instance_state, set_committed_value
from sqlalchemy.sql import ClauseElement

from .checks import Stage
from .dialects import json_arrays
from .exceptions import StateConflict, TransitionError
from .history import SHARED, attach_records, insert_records, record_rows
from .i18n import gettext
from .identity import describe, identity_of, instance_state_of
from .manager import StateManager
from .results import Plan, Step, TransitionResult
from .runtime import Runtime
from .signals import send_safely, transition_after, transition_before, transition_failed
from .tables import history_table

if t.TYPE_CHECKING:
    from .transitions import Transition


#: ``Connection.info``: the transaction has sent no write on it yet
_CLEAN = "statemgr_clean"
#: ``Session.info``: the connections the transaction began on
_JOINED = "statemgr_joined"
#: engines whose statements :func:`_note_write` watches
_watched: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


def _note_write(conn: sa.Connection, cursor: t.Any, statement: str, *args: t.Any) -> None:
    # anything but a plain read counts, a SAVEPOINT or a user's own text too
    if not statement.startswith("SELECT"):
        conn.info.pop(_CLEAN, None)


@event.listens_for(orm.Session, "after_begin")
def _joined(session: orm.Session, transaction: orm.SessionTransaction, connection: sa.Connection) -> None:
    joined = session.info.setdefault(_JOINED, [])
    if connection not in joined:
        joined.append(connection)
    engine = connection.engine
    if engine not in _watched:
        event.listen(engine, "before_cursor_execute", _note_write)
        _watched.add(engine)
        # not known to be clean: the watch began after it did
        connection.info.pop(_CLEAN, None)
    elif transaction.parent is None:
        connection.info[_CLEAN] = True


@event.listens_for(orm.Session, "after_transaction_end")
def _ended(session: orm.Session, transaction: orm.SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_JOINED, None)


def holds_nothing(obj: t.Any) -> bool:
    """Whether the transaction a perform on ``obj`` runs in holds nothing
    else: none is open yet, or the open one has only read (on one
    connection), and nothing waits to be flushed. A failure may then roll
    back the whole transaction instead of a savepoint, losing nothing but
    reads; two statements (SAVEPOINT, RELEASE) fewer."""
    state = instance_state_of(obj)
    session = state.session if state is not None else None
    if (
        state is None
        or session is None
        or session.new
        or session.deleted
        or session.dirty
        # a session joined to a connection's own transaction (a test
        # fixture's, say) could roll that back too
        or isinstance(session.get_bind(mapper=state.mapper), sa.Connection)
    ):
        return False
    if not session.in_transaction():
        return True
    joined = session.info.get(_JOINED, ())
    return len(joined) == 1 and joined[0].info.get(_CLEAN, False) is True


def execute(
    plan: Plan, user: t.Any, data: dict[str, t.Any], runtime: Runtime, savepoint: bool = True
) -> TransitionResult:
    """Stage 6: run every step of a checked plan all or nothing.

    :param savepoint: run inside a savepoint, so that a failure undoes this
        transition alone. Without, a failure rolls back the session's whole
        transaction: for a transaction that holds nothing else, the same
        outcome for two statements (SAVEPOINT, RELEASE) fewer.
    """
    run_plan(plan, user, data, runtime, savepoint)
    root = plan.steps[0]
    return TransitionResult(root.source, root.target, root.record, plan.steps, data)


def run_plan(
    plan: Plan,
    user: t.Any,
    data: dict[str, t.Any],
    runtime: Runtime,
    savepoint: bool = True,
    refused: dict[int, TransitionError] | None = None,
) -> set[int]:
    """:func:`execute` for a plan of one root or, with ``refused`` (see
    :func:`_run`), of many; the ids of the steps left out."""
    root = plan.steps[0]
    # an unmapped object has no instance state: it changes in memory only
    state = instance_state_of(root.obj)
    session = state.session if state is not None else None
    if state is not None and state.detached:
        raise TypeError(f"{describe(root.obj)} is detached; add it to a session first")
    folded: list[tuple[t.Any, list[str]]] = []
    try:
        if session is None:
            left_out = _run(plan, user, data, runtime, None, refused, folded)
        elif savepoint:
            with session.begin_nested():
                left_out = _run(plan, user, data, runtime, session, refused, folded)
        else:
            try:
                left_out = _run(plan, user, data, runtime, session, refused, folded)
            except BaseException:
                session.rollback()
                raise
    except BaseException as e:
        for step in plan.steps:
            _restore(step)
        if session is not None:
            # marked as written, so a savepoint's rollback leaves them be:
            # read again what the database has
            for obj, keys in folded:
                session.expire(obj, keys)
        error: BaseException = e
        if session is not None and _is_write_conflict(e, session):
            error = StateConflict(
                reasons=[Stage.STATE.reason(gettext("The object was changed at the same time by someone else"))]
            )
        roots = [root] if refused is None else [s for s in plan.steps if s.depth == 0]
        if isinstance(error, StateConflict) and session is not None:
            # what the checks saw is stale: read the rows again next time
            for step in roots:
                session.expire(step.obj, [_key_of(step)])
        if transition_failed.receivers:
            for step in roots:
                transition_failed.send(
                    step.transition,
                    obj=step.obj,
                    user=user,
                    data=data,
                    source=step.source,
                    target=step.target,
                    exception=error,
                )
        if error is e:
            raise
        raise error from e
    if session is not None and refused:
        for step in plan.steps:
            if id(step) in refused:
                session.expire(step.obj, [_key_of(step)])
    if transition_after.receivers:
        guard = session.begin_nested if session is not None else None
        for step in plan.steps:
            if id(step) not in left_out:
                send_safely(
                    transition_after,
                    step.transition,
                    guard=guard,
                    obj=step.obj,
                    user=user,
                    data=data,
                    source=step.source,
                    target=step.target,
                )
    return left_out


def _key_of(step: Step) -> str:
    view: StateManager = getattr(type(step.obj), step.manager)
    return view._key


def _restore(step: Step) -> None:
    key = _key_of(step)
    if sa.inspect(step.obj, raiseerr=False) is None:
        setattr(step.obj, key, step.seen)
    elif step.obj.__dict__.get(key, step.seen) != step.seen:
        set_committed_value(step.obj, key, step.seen)


#: an attribute a change-set names but the object no longer holds
_ABSENT = object()

#: PostgreSQL's deadlock_detected and serialization_failure
_PG_CONFLICTS = {"40P01", "40001"}


def _is_write_conflict(error: BaseException, session: orm.Session) -> bool:
    """Whether the database refused a write because of a concurrent
    transaction, which the user sees as any other concurrent change."""
    if not isinstance(error, exc.OperationalError):
        return False
    if session.get_bind().dialect.name == "sqlite":
        # SQLite reports a concurrent writer as "database is locked" rather
        # than waiting when a deferred transaction cannot upgrade to a write
        # lock.
        return "locked" in str(error.orig)
    # On PostgreSQL two transitions deadlock when each holds what the other
    # writes next: one stores a blob and then moves its cascade's rows, the
    # other moves one of those rows and then stores the same blob.
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return code in _PG_CONFLICTS


#: keys per set-based statement of a level: a fixed size, so a cascade or a
#: bulk perform adds a statement per thousand objects, and each statement
#: stays cheap to render, send and parse (an ``IN`` of 32,700 keys cost the
#: client more than the server spent on it)
CHUNK = 1000


def _levels(steps: list[Step]) -> list[list[Step]]:
    # the plan lists its steps level by level, parents first
    levels: list[list[Step]] = []
    for step in steps:
        if step.depth == len(levels):
            levels.append([step])
        else:
            levels[step.depth].append(step)
    return levels


def _run(
    plan: Plan,
    user: t.Any,
    data: dict[str, t.Any],
    runtime: Runtime,
    session: orm.Session | None,
    refused: dict[int, TransitionError] | None,
    folded: list[tuple[t.Any, list[str]]],
) -> set[int]:
    """Every level of ``plan``: signals and execute hooks, then the
    compare-and-set and history records; the ids of the steps left out.

    :param refused: for a plan of many roots (a bulk perform): their
        compare-and-set runs first, and a root that a concurrent change took
        is left out with its cascade, its error under ``id(root)``, rather
        than failing the others.
    :param folded: where the objects whose changes a compare-and-set wrote
        (see :func:`_fold`) go, with those attributes.
    """
    if session is not None:
        # who and when, for the history records
        at = datetime.datetime.now(datetime.UTC)
        user_id = runtime.user_id(user)
    left_out: set[int] = set()
    for depth, level in enumerate(_levels(plan.steps)):
        if left_out:
            # the cascade of a root left out stays out too
            left_out.update(id(s) for s in level if s.parent is not None and id(plan.steps[s.parent]) in left_out)
            level = [s for s in level if id(s) not in left_out]
        payload = data if depth == 0 else None
        moved_first = refused is not None and depth == 0 and session is not None
        if moved_first:
            assert session is not None and refused is not None
            kept = _move(session, plan.steps, level, payload, runtime, user_id, at, refused)
            left_out.update(id(s) for s in level if id(s) in refused)
            level = kept
        for step in level:
            view: StateManager = getattr(type(step.obj), step.manager)
            if transition_before.receivers:
                transition_before.send(
                    step.transition,
                    obj=step.obj,
                    user=user,
                    data=data,
                    source=step.source,
                    target=step.target,
                )
            assert view._hooks is not None
            for hook in view._hooks.executes.get(step.transition, ()):
                hook(step.obj, data)
        if session is None:
            for step in level:
                setattr(step.obj, _key_of(step), step.target.value)
            continue
        if moved_first:
            session.flush()
            for step in level:
                set_committed_value(step.obj, _key_of(step), step.target.value)
            continue
        recording = _recording_statement(session, level, payload, runtime)
        fold = _fold(session, level, folded) if recording is None else None
        session.flush()
        if recording is None:
            _move(session, plan.steps, level, payload, runtime, user_id, at, fold=fold)
            for step in level:
                set_committed_value(step.obj, _key_of(step), step.target.value)
        else:
            rows = record_rows(session, plan.steps, level, user_id, at, payload, runtime)
            ids = _compare_and_set_recording(session, level[0], recording, rows[0])
            attach_records(level, rows, ids, payload)
    return left_out


#: a change-set is the (attribute, value) pairs of one object's pending
#: column changes, by attribute name
Changes = tuple[tuple[str, t.Any], ...]

#: the most change-sets of a level folded into its compare-and-set, each
#: adding that statement per chunk; the objects of the others are flushed
#: (the flush batches their ``UPDATE``s), so values that differ for every
#: object (a timestamp of its own) cost no statement per object
FOLD_SETS = 4

#: values of these types are equal only when they are written alike (an
#: equal ``Decimal`` may differ in scale, a ``datetime`` in its time zone,
#: a ``float`` in its sign: those compare by type and ``repr`` too)
_PLAIN = frozenset({str, int, bool, bytes, type(None)})


class _Folded:
    """The change-sets of a level that its compare-and-set writes: each
    distinct set once in ``sets``, and by a step's position in the level
    the index of its object's set in ``of``."""

    __slots__ = ("sets", "of")

    def __init__(self) -> None:
        self.sets: list[Changes] = []
        self.of: dict[int, int] = {}


def _fold(session: orm.Session, level: list[Step], folded: list[tuple[t.Any, list[str]]]) -> _Folded | None:
    """Take the pending column changes of ``level``'s objects (what their
    execute hooks set) out of the flush, for the level's compare-and-set to
    write them: one ``UPDATE`` per chunk and change-set instead of one per
    object in the flush, where finding what changed costs more than the
    ``UPDATE``. The objects taken go to ``folded``.

    Only where the flush would write nothing else and run no code of the
    application: nothing listens to the session's flush or to the model's
    ``UPDATE``s, the model has no version counter and no column updated on
    every ``UPDATE`` (:func:`~.manager._foldable`), and every change of the
    object is a value (no SQL expression) for a plain column of the state
    column's table. An object that fails a condition, or whose change-set is
    not among the level's :data:`FOLD_SETS` most common, is flushed as
    before.
    """
    dispatch = session.dispatch
    if len(level) < 2 or dispatch.before_flush or dispatch.after_flush or dispatch.after_flush_postexec:
        return None
    foldable: dict[tuple[type, str], frozenset[str]] = {}
    # by what makes a change-set the same: its values, the states of the
    # objects that have it, and their steps' positions
    found: dict[tuple[t.Any, ...], tuple[Changes, list[orm.InstanceState[t.Any]], list[int]]] = {}
    # what makes a value that is not plain the same (or _ABSENT: none may
    # be), by its id: a hook often sets one object (a constant, one
    # timestamp) on every object of the level
    seen: dict[int, tuple[type, str] | object] = {}
    hash_key = session.hash_key
    for i, step in enumerate(level):
        state = instance_state(step.obj)
        if not state.modified:
            continue
        host = type(step.obj)
        keys = foldable.get((host, step.manager))
        if keys is None:
            view: StateManager = getattr(host, step.manager)
            mapper = state.mapper.dispatch
            assert view._hooks is not None
            keys = foldable[host, step.manager] = (
                frozenset() if mapper.before_update or mapper.after_update else view._hooks.foldable
            )
        changed = tuple(state.committed_state)
        if (
            not keys.issuperset(changed)
            or state.session_id != hash_key
            or not state.persistent
            or state.__dict__.get("_pending_mutations")
        ):
            continue
        values = state.dict
        key: list[t.Any] = [host, changed]
        for name in changed:
            value = values.get(name, _ABSENT)
            kind = type(value)
            if kind in _PLAIN:
                key += (kind, value)
                continue
            same = seen.get(id(value))
            if same is None:
                unwritable = (
                    value is _ABSENT or isinstance(value, ClauseElement) or hasattr(value, "__clause_element__")
                )
                same = seen[id(value)] = _ABSENT if unwritable else (kind, repr(value))
            if same is _ABSENT:
                break
            key.append(same)
        else:
            entry = found.get(tuple(key))
            if entry is None:
                entry = found[tuple(key)] = (tuple((name, values[name]) for name in changed), [], [])
            entry[1].append(state)
            entry[2].append(i)
    if not found:
        return None
    fold = _Folded()
    taken: dict[int, orm.InstanceState[t.Any]] = {}
    for changes, states, members in sorted(found.values(), key=lambda f: len(f[2]), reverse=True)[:FOLD_SETS]:
        if changes:
            fold.of.update(dict.fromkeys(members, len(fold.sets)))
            fold.sets.append(changes)
        names = [name for name, _ in changes]
        for state in states:
            if id(state) not in taken:
                taken[id(state)] = state
                if names:
                    folded.append((state.obj(), names))
    # the public set_committed_value leaves the object among the session's
    # modified ones, which the flush would still visit (half its cost)
    orm.InstanceState._commit_all_states(((s, s.dict) for s in taken.values()), session.identity_map)
    return fold


def _recording_statement(
    session: orm.Session, level: list[Step], payload: dict[str, t.Any] | None, runtime: Runtime
) -> sa.Insert | None:
    """The one-statement compare-and-set and record for a level of one step
    on PostgreSQL, or ``None`` to send them apart.

    The payload is stored before that statement runs, so a payload needing a
    store outside the transaction sends them apart: a compare-and-set that
    fails then stores nothing.
    """
    if len(level) != 1 or not _records_with_move(session, level[0], payload, runtime):
        return None
    view: StateManager = getattr(type(level[0].obj), level[0].manager)
    assert view._hooks is not None
    return view._hooks.cas_recording


def _records_with_move(session: orm.Session, step: Step, payload: dict[str, t.Any] | None, runtime: Runtime) -> bool:
    """Whether the compare-and-set may insert its history records in the
    same statement: on PostgreSQL (a data-modifying ``WITH``), unless the
    payload goes to a store outside the transaction first."""
    if payload and not runtime.store.backend.transactional:
        return False
    state = instance_state_of(step.obj)
    assert state is not None
    bind = session.get_bind(mapper=state.mapper)
    # one statement only when the model and the history share a database
    return bind.dialect.name == "postgresql" and bind is session.get_bind(clause=history_table)


def _compare_and_set_recording(
    session: orm.Session, step: Step, statement: sa.Insert, row: dict[str, t.Any]
) -> list[int]:
    """:func:`_move` of one step in one statement with scalar parameters;
    the record's id."""
    target = step.target.value
    identity = sa.inspect(step.obj).identity
    ids = list(
        session.execute(
            statement, {**row, "_sm_pk": identity[0], "_sm_seen": step.seen, "_sm_target": target}
        ).scalars()
    )
    if not ids:
        raise _changed(describe(step.obj))
    set_committed_value(step.obj, _key_of(step), target)
    return ids


def _changed(who: str) -> StateConflict:
    return StateConflict(
        reasons=[Stage.STATE.reason(gettext("%(object)s changed state while the transition ran", object=who))]
    )


def _move(
    session: orm.Session,
    steps: list[Step],
    level: list[Step],
    payload: dict[str, t.Any] | None,
    runtime: Runtime,
    user_id: str | None,
    at: datetime.datetime,
    refused: dict[int, TransitionError] | None = None,
    fold: _Folded | None = None,
) -> list[Step]:
    """Move every step's object of ``level`` to its target with ``UPDATE``s
    guarded by the state the checks saw, a chunk of keys at a time, and
    write their history records; the steps moved. On PostgreSQL each chunk
    is one statement that also inserts the records; elsewhere the records
    follow (:func:`~.history.insert_records`).

    :param refused: where a step whose row a concurrent change took goes
        (by ``id(step)``); without, such a row fails the whole level.
    :param fold: the column changes those ``UPDATE``s write too.
    """
    combined = _records_with_move(session, level[0], payload, runtime)
    # apart, the records (and the payload's blobs) are written once the rows
    # moved, so a conflict stores nothing outside the transaction
    rows: dict[int, dict[str, t.Any]] = (
        dict(enumerate(record_rows(session, steps, level, user_id, at, payload, runtime))) if combined else {}
    )
    sets = fold.of if fold is not None else {}
    groups: dict[tuple[type, str, Transition, t.Any, int | None], list[int]] = {}
    for i, step in enumerate(level):
        groups.setdefault((type(step.obj), step.manager, step.transition, step.seen, sets.get(i)), []).append(i)
    taken: set[int] = set()
    #: the record id of each step recorded with its move
    ids: dict[int, int] = {}
    for (host, manager, transition, seen, changes), members in groups.items():
        view: StateManager = getattr(host, manager)
        hooks = view._hooks
        assert hooks is not None and hooks.cas is not None
        values = {"_sm_seen": seen, "_sm_target": transition.target.value}
        cas, cas_json = hooks.cas, hooks.cas_json
        setting: tuple[str, ...] = ()
        if changes is not None:
            assert fold is not None and refused is None
            written = fold.sets[changes]
            setting = tuple(key for key, _ in written)
            cas, cas_json = hooks.setting(setting)
            values.update((f"_sm_set_{n}", value) for n, (_, value) in enumerate(written))
        # one JSON array of keys where the database takes it
        moving = (
            cas_json if cas_json is not None and json_arrays(session.get_bind(mapper=sa.inspect(host)).dialect) else cas
        )
        as_json = moving is not cas
        for start in range(0, len(members), CHUNK):
            chunk = members[start : start + CHUNK]
            identities = [identity_of(level[i].obj) for i in chunk]
            cas_many_recording = hooks.many_recording(setting) if rows else None
            if cas_many_recording is not None:
                # the record's key is the object's identity as a string, as
                # record_rows writes it
                shared = {name: rows[chunk[0]][name] for name in SHARED}
                keys = {"_sm_pks": [i[0] for i in identities], "_sm_parents": [rows[i]["parent_id"] for i in chunk]}
                recorded = dict(
                    (object_id, id_)
                    for id_, object_id in session.execute(cas_many_recording, {**shared, **keys, **values})
                )
                for i in chunk:
                    if rows[i]["object_id"] in recorded:
                        ids[i] = recorded[rows[i]["object_id"]]
                    else:
                        taken.add(i)
                missed = len(chunk) - len(recorded)
            else:
                pks: t.Any = [i[0] if len(i) == 1 else i for i in identities]
                if as_json:
                    pks = json.dumps(pks)
                if refused is None:
                    result = session.execute(moving, {"_sm_pks": pks, **values})
                    missed = len(chunk) - result.rowcount  # type: ignore[attr-defined]
                else:
                    returning = hooks.cas_json_returning if as_json else hooks.cas_returning
                    assert returning is not None
                    returned = {tuple(row) for row in session.execute(returning, {"_sm_pks": pks, **values})}
                    taken.update(i for i, identity in zip(chunk, identities) if tuple(identity) not in returned)
                    missed = len(chunk) - len(returned)
            if missed and refused is None:
                who = (
                    describe(level[chunk[0]].obj)
                    if len(chunk) == 1
                    else f"{missed} of {len(chunk)} {host.__name__} objects"
                )
                raise _changed(who)
    for i in taken:
        assert refused is not None
        refused[id(level[i])] = _changed(describe(level[i].obj))
    kept = [i for i in range(len(level)) if i not in taken]
    moved = [level[i] for i in kept]
    if not rows:
        rows = dict(zip(kept, record_rows(session, steps, moved, user_id, at, payload, runtime)))
    unrecorded = [i for i in kept if i not in ids]
    if unrecorded:
        ids.update(zip(unrecorded, insert_records(session, [rows[i] for i in unrecorded], CHUNK)))
    attach_records(moved, [rows[i] for i in kept], [ids[i] for i in kept], payload)
    return moved
