"""One transition on many objects at once:
``Project.state.withdraw.perform_all(objects)`` (DESIGN §5).

Each object is checked as a single perform would check it; the refused are
reported and skipped. The others run as one plan of many roots, so the
statements sent grow by chunks of :data:`~flask_statemgr.execute.CHUNK`
objects, not by object: a compare-and-set ``UPDATE`` per chunk (with its
history records on PostgreSQL, an ``INSERT`` per chunk elsewhere), and the
execute hooks' flush.
"""

from __future__ import annotations

import dataclasses
import typing as t

import sqlalchemy as sa
from sqlalchemy import orm

from .cascade import preload
from .checks import Checker, Stage, validate_data
from .exceptions import StateConflict, TransitionError, ValidationFailed
from .execute import CHUNK, holds_nothing, run_plan
from .identity import describe, identity_of, instance_state_of
from .results import BulkResult, Plan, Step, TransitionResult
from .runtime import Runtime, current_runtime

if t.TYPE_CHECKING:
    from .bound import BoundTransition
    from .typing import SessionLike


def perform_all(
    bound: BoundTransition,
    objects: t.Iterable[t.Any] | sa.Select[t.Any],
    user: t.Any = None,
    data: t.Mapping[str, t.Any] | None = None,
    *,
    session: SessionLike | None = None,
) -> BulkResult:
    """:meth:`BoundTransition.perform_all`."""
    transition = bound.transition
    host = bound.host
    name = bound.manager._name
    runtime = current_runtime()
    objs = _objects(host, objects, session, runtime)
    if not objs:
        return BulkResult([], {})
    own = _session_of(objs)
    # asked before the checks, as a single perform asks
    savepoint = own is not None and not holds_nothing(objs[0])
    if own is not None:
        _load(own, host, objs, bound.manager._key)
    checker = Checker(runtime, user)
    for attr in transition.cascade:
        preload(objs, attr)
    refused: dict[t.Any, TransitionError] = {}
    plans: list[Plan] = []
    for obj in objs:
        plan = type(bound)(transition, getattr(obj, name)).plan_with(checker)
        if plan.error is not None:
            refused[obj] = plan.error
        else:
            plans.append(plan)
    if not plans:
        return BulkResult([], refused)
    try:
        cleaned = validate_data(transition, data)
    except ValidationFailed as e:
        # the same data for every object: each that passed the checks fails here
        for plan in plans:
            refused[plan.steps[0].obj] = e
        return BulkResult([], refused)
    merged, executing = _merge(plans, refused)
    if not executing:
        return BulkResult([], refused)
    conflicts: dict[int, TransitionError] = {}
    left_out = run_plan(merged, user, cleaned, runtime, savepoint, conflicts)
    performed = []
    for plan, steps in executing:
        root = steps[0]
        if id(root) in left_out:
            refused[root.obj] = conflicts.get(id(root)) or _conflict(root, "its cascade was changed meanwhile")
            continue
        for step, ran in zip(plan.steps, steps):
            step.record = ran.record
        first = plan.steps[0]
        performed.append(TransitionResult(first.source, first.target, first.record, plan.steps, cleaned))
    return BulkResult(performed, refused)


def _objects(
    host: type, objects: t.Iterable[t.Any] | sa.Select[t.Any], session: SessionLike | None, runtime: Runtime
) -> list[t.Any]:
    """The distinct objects to perform on, in the order given; a ``select()``
    runs in ``session`` (by default the extension's ``db.session``)."""
    if isinstance(objects, sa.Select):
        if session is None:
            # the extension's Flask-SQLAlchemy, when the app has one
            db = getattr(runtime, "db", None)
            if db is None:
                raise TypeError("perform_all(select(...)) needs session= without StateMgr(app, db)")
            session = t.cast("SessionLike", db.session)
        found: t.Iterable[t.Any] = session.scalars(objects)
    elif isinstance(objects, (str, bytes, t.Mapping)) or not isinstance(objects, t.Iterable):
        raise TypeError(f"perform_all takes a list of {host.__name__} objects or a select(), not {objects!r}")
    else:
        found = objects
    distinct = {id(obj): obj for obj in found}
    for obj in distinct.values():
        if not isinstance(obj, host):
            raise TypeError(f"perform_all on {host.__name__} was given {obj!r}")
    return list(distinct.values())


def _session_of(objs: list[t.Any]) -> orm.Session | None:
    """The one session all of ``objs`` are in (``None`` for objects in
    memory only); pending objects are flushed, so they have keys."""
    sessions = set()
    pending = False
    for obj in objs:
        state = instance_state_of(obj)
        if state is not None and state.detached:
            raise TypeError(f"{describe(obj)} is detached; add it to a session first")
        session = state.session if state is not None else None
        sessions.add(session)
        pending = pending or (state is not None and state.pending)
    if len(sessions) > 1:
        raise TypeError("perform_all needs every object in the same session (one transaction)")
    (session,) = sessions
    if session is not None and pending:
        session.flush()
    return session


def _load(session: orm.Session, host: type, objs: list[t.Any], key: str) -> None:
    """Read the rows of objects whose state was expired (after a commit,
    say) with one ``SELECT`` per chunk, instead of a refresh each."""
    stale = [identity_of(obj) for obj in objs if key not in obj.__dict__]
    if not stale:
        return
    pk: tuple[sa.Column[t.Any], ...] = sa.inspect(host).primary_key
    column = pk[0] if len(pk) == 1 else sa.tuple_(*pk)
    keys = [identity[0] if len(pk) == 1 else identity for identity in stale]
    for start in range(0, len(keys), CHUNK):
        # objects already in the session get their expired attributes filled
        session.execute(sa.select(host).where(column.in_(keys[start : start + CHUNK]))).scalars().all()


def _merge(plans: list[Plan], refused: dict[t.Any, TransitionError]) -> tuple[Plan, list[tuple[Plan, list[Step]]]]:
    """One plan of many roots, level by level, from the objects' own plans;
    and for each plan kept, the merged step that runs each of its steps.

    Two cascades reaching one (object, manager) share its step; reaching it
    towards different targets refuses the later object.
    """
    if all(len(plan.steps) == 1 for plan in plans):
        # no cascade: the objects are distinct, their steps run as they are
        return Plan([plan.steps[0] for plan in plans], []), [(plan, plan.steps) for plan in plans]
    shared: dict[tuple[int, str], Step] = {}
    parents: dict[int, Step] = {}
    merged: list[Step] = []
    executing: list[tuple[Plan, list[Step]]] = []
    for plan in plans:
        clash = None
        for step in plan.steps:
            found = shared.get((id(step.obj), step.manager))
            if found is not None and found.transition.target is not step.transition.target:
                clash = step
                break
        if clash is not None:
            refused[plan.steps[0].obj] = _conflict(
                clash, "the cascade of another object reaches it with a conflicting transition"
            )
            continue
        runs: list[Step] = []
        for step in plan.steps:
            ran = shared.get((id(step.obj), step.manager))
            if ran is None:
                parent = runs[step.parent] if step.parent is not None else None
                ran = dataclasses.replace(step, parent=None, depth=0 if parent is None else parent.depth + 1)
                if parent is not None:
                    parents[id(ran)] = parent
                shared[id(step.obj), step.manager] = ran
                merged.append(ran)
            runs.append(ran)
        executing.append((plan, runs))
    # the engine runs a plan's steps level by level, parents first
    merged.sort(key=lambda s: s.depth)
    position = {id(s): i for i, s in enumerate(merged)}
    for step in merged:
        parent = parents.get(id(step))
        if parent is not None:
            step.parent = position[id(parent)]
    return Plan(merged, []), executing


def _conflict(step: Step, why: str) -> StateConflict:
    return StateConflict(reasons=[Stage.STATE.reason(f"{describe(step.obj)}: {why}")])
