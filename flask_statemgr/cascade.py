"""Planning a cascade: the steps a transition causes on related objects (and
on the object's other managers), each checked as its own step, level by
level so each level's children load with one query per relationship.
"""

from __future__ import annotations

import json
import typing as t
import weakref
from collections import abc

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm.attributes import set_committed_value

from .checks import Checker, Stage
from .declaration import resolve_cascade
from .dialects import json_arrays, key_type
from .exceptions import PermissionDenied, StateConflict, TransitionError
from .execute import CHUNK
from .i18n import gettext
from .identity import describe
from .manager import StateManager, bindings_of
from .results import Plan, Reason, Step

if t.TYPE_CHECKING:
    from .transitions import Transition


class _Direct(t.NamedTuple):
    """How :func:`preload` loads a one-to-many relationship itself."""

    #: the parent's attributes the children's keys match, in order
    parent_keys: tuple[str, ...]
    #: the children's columns and attributes that hold those keys
    child_columns: tuple[sa.ColumnElement[t.Any], ...]
    child_keys: tuple[str, ...]
    #: the children's many-to-one back to the parent, set as it is loaded
    reverse: str | None


#: per relationship, its :class:`_Direct`, or ``None`` to load it with
#: ``selectinload``
_direct: weakref.WeakKeyDictionary[orm.RelationshipProperty[t.Any], _Direct | None] = weakref.WeakKeyDictionary()


def _direct_load(rel: orm.RelationshipProperty[t.Any]) -> _Direct | None:
    """Whether the children of relationship ``rel`` can be selected by their
    foreign key alone: a plain lazy-loaded one-to-many whose join is that
    key's equality and nothing else.

    Its many-to-one back to the parent (``back_populates``, or the
    ``backref`` that declares it), lazy-loaded on the same columns, is the
    parent itself: setting it spares each child's checks a look in the
    identity map by that key (``Session.roles_for`` asking its project),
    which costs more than loading the child.
    """
    if rel in _direct:
        return _direct[rel]
    found = None
    pairs = rel.local_remote_pairs or []
    join = sa.and_(*(local == remote for local, remote in pairs)) if pairs else None
    if (
        join is not None
        and rel.direction is orm.RelationshipDirection.ONETOMANY
        and rel.secondary is None
        and rel.lazy == "select"
        and rel.primaryjoin.compare(join)
    ):
        reverse = rel.mapper.relationships.get(rel.back_populates) if rel.back_populates else None
        mirrored = {(remote, local) for local, remote in pairs}
        found = _Direct(
            tuple(rel.parent.get_property_by_column(local).key for local, _ in pairs),
            tuple(remote for _, remote in pairs),
            tuple(rel.mapper.get_property_by_column(remote).key for _, remote in pairs),
            reverse.key
            if reverse is not None
            and reverse.direction is orm.RelationshipDirection.MANYTOONE
            and reverse.lazy == "select"
            and set(reverse.local_remote_pairs or ()) == mirrored
            else None,
        )
    _direct[rel] = found
    return found


def _matching(
    columns: tuple[sa.ColumnElement[t.Any], ...], dialect: sa.Dialect
) -> tuple[sa.ColumnElement[bool], t.Callable[[list[t.Any]], t.Any]]:
    """``columns IN :_sm_keys``, and what turns a list of keys into that
    parameter: on PostgreSQL ``= ANY`` of an array, on SQLite
    (:func:`~.dialects.json_arrays`) the values of a JSON array, for one
    integer or string column. One parameter and the same text for any
    number of keys: an expanded ``IN`` of a thousand costs SQLAlchemy and
    the driver more to render and parse than the database spends on the
    query."""
    if key_type(columns) in (int, str):
        if dialect.name == "postgresql":
            # here, not at the top: an app on SQLite never loads this dialect
            from sqlalchemy.dialects import postgresql

            keys = sa.bindparam("_sm_keys", type_=postgresql.ARRAY(columns[0].type))
            return columns[0] == sa.any_(keys), list
        if json_arrays(dialect):
            given = sa.func.json_each(sa.bindparam("_sm_keys")).table_valued("value")
            return columns[0].in_(sa.select(given.c.value)), json.dumps
    keys = sa.bindparam("_sm_keys", expanding=True)
    return (columns[0] if len(columns) == 1 else sa.tuple_(*columns)).in_(keys), list


def preload(parents: list[t.Any], attr: str) -> None:
    """Load relationship ``attr`` of many objects of one class with one
    set-based query per chunk of keys, instead of one lazy load each."""
    if not parents:
        return
    host = type(parents[0])
    mapper = sa.inspect(host, raiseerr=False)
    if mapper is None or attr not in mapper.relationships:
        return
    rel = mapper.relationships[attr]
    direct = _direct_load(rel)
    if direct is None and len(parents) < 2:
        return
    pending = []
    session = None
    for parent in parents:
        state = sa.inspect(parent)
        if state.persistent and attr in state.unloaded:
            pending.append(parent)
            session = state.session
    if session is None:
        return
    if direct is not None:
        _load_children(session, rel, direct, attr, pending)
        return
    pk = mapper.primary_key
    key = pk[0] if len(pk) == 1 else sa.tuple_(*pk)
    identities = []
    for parent in pending:
        identity = sa.inspect(parent).identity
        identities.append(identity[0] if len(identity) == 1 else identity)
    # the loader's own default chunk (500 keys) would add a query per 500 parents
    loader = orm.selectinload(getattr(host, attr), chunksize=CHUNK)
    for start in range(0, len(identities), CHUNK):
        session.execute(
            sa.select(host).where(key.in_(identities[start : start + CHUNK])).options(loader)
        ).scalars().all()


def _load_children(
    session: orm.Session, rel: orm.RelationshipProperty[t.Any], direct: _Direct, attr: str, parents: list[t.Any]
) -> None:
    """:func:`preload` of a relationship :func:`_direct_load` accepts: the
    children by their foreign key, a chunk of parents at a time (as
    ``selectinload`` would, without selecting the parents again), each
    parent's collection set from them in the relationship's order."""
    single = len(direct.child_columns) == 1
    match, send = _matching(direct.child_columns, session.get_bind(mapper=rel.mapper).dialect)
    keyed: dict[t.Any, t.Any] = {}
    for parent in parents:
        values = parent.__dict__
        if all(key in values for key in direct.parent_keys):
            parent_key = tuple(values[key] for key in direct.parent_keys)
            keyed[parent_key[0] if single else parent_key] = parent
    query = sa.select(*direct.child_columns, rel.entity).where(match)
    if rel.order_by:
        query = query.order_by(*rel.order_by)
    keys = list(keyed)
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        children: dict[t.Any, list[t.Any]] = {key: [] for key in chunk}
        for row in session.execute(query, {"_sm_keys": send(chunk)}):
            children[row[0] if single else tuple(row[:-1])].append(row[-1])
        for key, found in children.items():
            parent = keyed[key]
            set_committed_value(parent, attr, found)
            if direct.reverse is None:
                continue
            for child in found:
                values = child.__dict__
                # as its lazy load would, by the key it holds now
                if direct.reverse not in values and (
                    values.get(direct.child_keys[0]) == key
                    if single
                    else tuple(values.get(k) for k in direct.child_keys) == key
                ):
                    set_committed_value(child, direct.reverse, parent)


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
    # per child class and cascade spec: the manager, the transition, and the
    # class's view, which the checks take (they read the object they are
    # given): no view of its own per child
    targets: dict[tuple[type, str], tuple[str, Transition, StateManager]] = {}
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
                        name, found = resolve_cascade(type(child), spec)
                        resolved = targets[type(child), spec] = (name, found, getattr(type(child), name))
                    manager_name, transition, view = resolved
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
