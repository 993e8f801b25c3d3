"""Planning a cascade: the steps a transition causes on related objects (and
on the object's other managers), each checked as its own step, level by
level so each level's children load with one query per relationship.
"""

from __future__ import annotations

import typing as t
from collections import abc

import sqlalchemy as sa
from sqlalchemy import orm

from .checks import Checker, Stage
from .declaration import resolve_cascade
from .exceptions import PermissionDenied, StateConflict, TransitionError
from .execute import CHUNK
from .i18n import gettext
from .identity import describe
from .manager import StateManager, bindings_of
from .results import Plan, Reason, Step

if t.TYPE_CHECKING:
    from .transitions import Transition


def preload(parents: list[t.Any], attr: str) -> None:
    """Load relationship ``attr`` of many objects of one class with one
    set-based query per chunk of keys, instead of one lazy load each."""
    if len(parents) < 2:
        return
    host = type(parents[0])
    mapper = sa.inspect(host, raiseerr=False)
    if mapper is None or attr not in mapper.relationships:
        return
    pending = []
    session = None
    for parent in parents:
        state = sa.inspect(parent)
        if state.persistent and attr in state.unloaded:
            identity = state.identity
            pending.append(identity[0] if len(identity) == 1 else identity)
            session = state.session
    if session is None:
        return
    pk = mapper.primary_key
    key = pk[0] if len(pk) == 1 else sa.tuple_(*pk)
    # the loader's own default chunk (500 keys) would add a query per 500 parents
    loader = orm.selectinload(getattr(host, attr), chunksize=CHUNK)
    for start in range(0, len(pending), CHUNK):
        session.execute(sa.select(host).where(key.in_(pending[start : start + CHUNK])).options(loader)).scalars().all()


def _related(obj: t.Any, attr: str) -> list[t.Any]:
    """The objects ``attr`` of ``obj`` reaches: none, one, or a collection's
    members (a keyed collection's values)."""
    try:
        value = getattr(obj, attr)
    except AttributeError:
        raise TypeError(f"cascade {attr!r}: {type(obj).__name__} has no attribute {attr!r}") from None
    if value is None:
        return []
    if isinstance(value, abc.Mapping):
        return list(value.values())
    if isinstance(value, abc.Iterable) and not isinstance(value, (str, bytes)):
        return list(value)
    return [value]


def expand(plan: Plan, checker: Checker) -> None:
    """Add the cascade's steps to ``plan``, level by level, so each level's
    children load with one query per relationship.

    Every object the cascade reaches is checked; a blocked one is still a
    step (and its own cascade is followed) so that the plan lists the whole
    chain and every blocker, not just the first. Each (object, manager) is
    visited once, which also ends cycles; reaching one again towards another
    target is a conflict.
    """
    steps = plan.steps
    # what each (object, manager) visited is moved (or already) to
    reached: dict[tuple[int, str], Transition] = {(id(steps[0].obj), steps[0].manager): steps[0].transition}
    targets: dict[tuple[type, str], tuple[str, Transition]] = {}
    managers: dict[type, dict[str, StateManager]] = {}

    def same_object(host: type, attr: str) -> bool:
        """Whether cascade key ``attr`` names another manager of ``host``."""
        found = managers.get(host)
        if found is None:
            found = managers[host] = bindings_of(host)
        return attr in found

    frontier = [0]
    while frontier:
        by_relation: dict[tuple[type, str], list[t.Any]] = {}
        for i in frontier:
            step = steps[i]
            host = type(step.obj)
            for attr in step.transition.cascade:
                if not same_object(host, attr):
                    by_relation.setdefault((host, attr), []).append(step.obj)
        for (_, attr), parents in by_relation.items():
            preload(parents, attr)
        next_frontier = []
        for i in frontier:
            parent = steps[i]
            host = type(parent.obj)
            for attr, spec in parent.transition.cascade.items():
                if same_object(host, attr):
                    children = [parent.obj]
                    spec = spec if "." in spec else f"{attr}.{spec}"
                else:
                    children = _related(parent.obj, attr)
                for child in children:
                    resolved = targets.get((type(child), spec))
                    if resolved is None:
                        resolved = targets[type(child), spec] = resolve_cascade(type(child), spec)
                    manager_name, transition = resolved
                    key = (id(child), manager_name)
                    first = reached.get(key)
                    if first is not None:
                        # reached again (a cycle, or two paths): fine if it
                        # ends where the plan already leaves it
                        if first.target is not transition.target:
                            twice = Stage.CASCADE.reason(
                                gettext(
                                    "%(object)s: the cascade reaches it twice with "
                                    "conflicting transitions (%(first)s, %(second)s)",
                                    object=describe(child),
                                    first=first.name,
                                    second=transition.name,
                                ),
                            )
                            plan.blockers.append(twice)
                            plan.error = plan.error or StateConflict(reasons=[twice])
                        continue
                    reached[key] = transition
                    view: StateManager = getattr(child, manager_name)
                    value = view._read(child)
                    if value == transition.target.value:
                        continue
                    error = checker.failure(view, transition, child, value, cascaded=True)
                    if error is not None:
                        for reason in error.reasons:
                            blocker = Stage.CASCADE.reason(f"{describe(child)}: {reason.message}")
                            plan.blockers.append(blocker)
                            if plan.error is None:
                                plan.error = _as_cascade_error(error, blocker)
                    next_frontier.append(len(steps))
                    steps.append(
                        # an undeclared value is a blocker above; the step is
                        # listed, never run
                        Step(
                            child,
                            manager_name,
                            transition,
                            view._by_value.get(value, transition.target),
                            value,
                            parent=i,
                            depth=parent.depth + 1,
                        )
                    )
        frontier = next_frontier


def _as_cascade_error(error: TransitionError, reason: Reason) -> TransitionError:
    if isinstance(error, PermissionDenied):
        return PermissionDenied(reason.message, [reason], anonymous=error.anonymous)
    return type(error)(reason.message, [reason])
