"""The transition engine: checks, plans and performs transitions.

Performing is three phases, so dependencies and chains slot into one shape:

1. **plan**: the root step and, through ``cascade``, every step it causes,
   each checked in order (state, requires, permission, preconditions); any
   blocker refuses the whole plan before anything changes;
2. **validate** the submitted data with the transition's form;
3. **execute** every step all or nothing, inside one savepoint (or a
   transaction that holds nothing else): signals, execute hooks, a
   compare-and-set of the state column per level and chunk of objects,
   history records.
"""

from __future__ import annotations

import datetime
import typing as t
import weakref
from collections import abc

import sqlalchemy as sa
from sqlalchemy import event, exc, orm
from sqlalchemy.orm.attributes import instance_state, set_committed_value

from .availability import Availability, BulkResult, Plan, Reason, Step, TransitionResult
from .exceptions import (
    PermissionDenied,
    PreconditionFailed,
    RequirementsUnmet,
    StateConflict,
    TransitionError,
    ValidationFailed,
)
from .i18n import gettext, is_text, text
from .history import attach_records, insert_records, record_rows
from .manager import StateManager, bindings_of
from .runtime import Runtime, current_runtime
from .signals import send_safely, transition_after, transition_before, transition_failed, transition_refused
from .tables import history_table
from .storable import unstorable_text

if t.TYPE_CHECKING:
    from .history import SessionLike
    from .states import State
    from .transitions import Transition

def object_identity(obj: t.Any) -> str:
    """The primary key of ``obj`` as a string (``"12"``, ``"3,7"``)."""
    state = _instance_state(obj)
    identity = state.identity if state is not None else None
    if identity is None:
        return str(getattr(obj, "id", id(obj)))
    return ",".join(str(v) for v in identity)


def identity_of(obj: t.Any) -> tuple[t.Any, ...]:
    """The primary key of a persistent ``obj``."""
    identity = instance_state(obj).identity
    assert identity is not None, f"{obj!r} has no primary key yet"
    return identity


def describe(obj: t.Any) -> str:
    return f"{type(obj).__name__} {object_identity(obj)}"


def is_anonymous(user: t.Any) -> bool:
    return user is None or getattr(user, "is_anonymous", False) is True


#: what :meth:`_Checker.failure` answers without ``explain``; never raised
_REFUSED = TransitionError("Transition refused")


class _Checker:
    """Runs the pre-execution checks for one user, remembering each object's
    roles so a listing or a cascade asks the roles loader once per object."""

    __slots__ = ("runtime", "user", "_roles")

    def __init__(self, runtime: Runtime, user: t.Any) -> None:
        self.runtime = runtime
        self.user = user
        self._roles: dict[int, t.AbstractSet[str]] = {}

    def roles(self, obj: t.Any) -> t.AbstractSet[str]:
        key = id(obj)
        roles = self._roles.get(key)
        if roles is None:
            roles = self._roles[key] = self.runtime.roles_for(obj, self.user)
        return roles

    def failure(
        self,
        view: StateManager,
        transition: Transition,
        obj: t.Any,
        value: t.Any,
        explain: bool = True,
        cascaded: bool = False,
    ) -> TransitionError | None:
        """The first failing stage for one step, or ``None``.

        :param explain: build the error and its reasons. Without, a failure
            is the shared :data:`_REFUSED`: a yes/no answer (a listing)
            would spend more on messages than on the checks.
        :param cascaded: the step is caused by another's cascade. An
            internal transition is refused unless it is; when it is, its
            own roles and permission hooks are not asked (the cause's were).
        """
        if transition.internal and not cascaded:
            # before the state: that it is never performed directly does
            # not depend on the object
            if not explain:
                return _REFUSED
            message = gettext(
                "%(transition)s only happens as a step of another transition", transition=_title(transition)
            )
            return PermissionDenied(reasons=[Reason("permission", message)])
        # 1. state
        if value not in transition.source_values and not (
            # tested first: an empty any() still builds its generator
            transition.conditional_sources
            and any(value in c.values and view._holds(c, obj) for c in transition.conditional_sources)
        ):
            if not explain:
                return _REFUSED
            state = view._by_value.get(value)
            if state is None:
                message = gettext(
                    "%(transition)s is not possible: %(manager)s holds %(value)s, which is not a declared state",
                    transition=_title(transition), manager=view._name, value=repr(value),
                )
            else:
                message = gettext(
                    "%(transition)s is not possible while %(manager)s is %(state)s",
                    transition=_title(transition), manager=view._name, state=state.title or state.name,
                )
            return StateConflict(reasons=[Reason("state", message)])
        # 2. requires
        if transition.requires:
            unmet = [
                Reason(
                    "requires",
                    gettext("%(path)s must be %(state)s", path=_path_words(path), state=state.title or state.name),
                )
                for path, state in transition.requires.items()
                if not _requirement_holds(obj, path, state)
            ]
            if unmet:
                return RequirementsUnmet(reasons=unmet) if explain else _REFUSED
        # 3. permission: an internal step's is its cause's
        if not (cascaded and transition.internal):
            if transition.roles is not None and transition.roles.isdisjoint(self.roles(obj)):
                if not explain:
                    return _REFUSED
                if not transition.roles:
                    # logging in would not help either
                    return PermissionDenied(
                        reasons=[
                            Reason(
                                "permission",
                                gettext("No one may %(transition)s this", transition=text(_title(transition)).lower()),
                            )
                        ]
                    )
                return self._denied(
                    gettext(
                        "%(transition)s needs the role %(roles)s",
                        transition=_title(transition),
                        roles=gettext(" or ").join(sorted(transition.roles)),
                    )
                )
            for permission in transition.permissions:
                if not permission(obj, self.user):
                    if not explain:
                        return _REFUSED
                    return self._denied(
                        gettext("You may not %(transition)s this", transition=text(_title(transition)).lower())
                    )
        # 4. preconditions
        assert view._hooks is not None
        preconditions = view._hooks.preconditions.get(transition)
        if preconditions:
            failed = []
            for precondition in preconditions:
                outcome = precondition(obj)
                if is_text(outcome):
                    failed.append(Reason("precondition", outcome))
                elif not outcome:
                    failed.append(Reason("precondition", _unmet(transition, precondition)))
            if failed:
                return PreconditionFailed(reasons=failed) if explain else _REFUSED
        return None

    def _denied(self, message: str) -> PermissionDenied:
        anonymous = is_anonymous(self.user)
        if anonymous:
            message = gettext("Log in: %(reason)s", reason=f"{message[0].lower()}{message[1:]}")
        return PermissionDenied(reasons=[Reason("permission", message)], anonymous=anonymous)


def _title(transition: Transition) -> str:
    return transition.title or transition.name


def _path_words(path: str) -> str:
    """An attribute path as a person reads it: ``project.state`` is
    "project's state"."""
    return "'s ".join(part.replace("_", " ") for part in path.split("."))


def _unmet(transition: Transition, precondition: t.Callable[..., t.Any]) -> str:
    """The reason for a precondition that answered ``False``: the first line
    of its docstring, else its name in words (``_has_title``: "has
    title")."""
    doc = (precondition.__doc__ or "").strip()
    if doc:
        return doc.splitlines()[0]
    words = precondition.__name__.strip("_").replace("_", " ")
    return gettext(
        "%(transition)s is not possible yet: “%(precondition)s” is not met", transition=_title(transition), precondition=words
    )


def _requirement_holds(obj: t.Any, path: str, state: State) -> bool:
    """Whether the manager at ``path`` from ``obj`` is in ``state``; a missing
    related object on the way (``None``) is an unmet requirement."""
    target: t.Any = obj
    for part in path.split("."):
        target = getattr(target, part)
        if target is None:
            return False
    if not isinstance(target, StateManager) or target._obj is None:
        raise TypeError(f"requires path {path!r} on {type(obj).__name__} does not lead to a state manager")
    return bool(target._test(state))


def _child_transition(host: type, spec: str) -> tuple[str, Transition]:
    """Resolve a cascade target name (``"delete"`` or ``"state.delete"``) on
    a model class to (manager attribute, transition)."""
    bindings = bindings_of(host)
    if "." in spec:
        manager_name, name = spec.split(".", 1)
        binding = bindings.get(manager_name)
        if binding is None or name not in binding._declared_transitions:
            raise TypeError(f"cascade target {spec!r} does not exist on {host.__name__}")
        return manager_name, binding._declared_transitions[name]
    matches = [(m, b._declared_transitions[spec]) for m, b in bindings.items() if spec in b._declared_transitions]
    if len(matches) != 1:
        where = "no manager" if not matches else "several managers"
        raise TypeError(
            f"cascade target {spec!r}: {where} on {host.__name__} has that transition; "
            f"write 'manager.{spec}'"
        )
    return matches[0]


def _preload(parents: list[t.Any], attr: str) -> None:
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
    value = getattr(obj, attr)
    if value is None:
        return []
    if isinstance(value, abc.Mapping):
        return list(value.values())
    if isinstance(value, abc.Iterable) and not isinstance(value, (str, bytes)):
        return list(value)
    return [value]


class BoundTransition:
    """A transition bound to a model instance (``project.state.publish``) or
    to a model class (``Project.state.publish``)."""

    __slots__ = ("transition", "manager")

    def __init__(self, transition: Transition, manager: StateManager) -> None:
        # declared here, not in the class body: there a checker would treat
        # these as the Transition and StateManager descriptors they hold
        self.transition: Transition = transition
        #: the manager view this transition was reached through
        self.manager: StateManager = manager

    @property
    def name(self) -> str:
        return self.transition.name

    @property
    def title(self) -> str:
        return self.transition.title

    @property
    def obj(self) -> t.Any:
        return self.manager._obj

    @property
    def host(self) -> type:
        """The model class."""
        host = self.manager._host
        assert host is not None
        return host

    def _instance(self) -> t.Any:
        obj = self.manager._obj
        if obj is None:
            raise TypeError(
                f"{self.transition!r} is bound to the class {self.host.__name__}; "
                "use it through an instance"
            )
        return obj

    def is_available(self, user: t.Any = None) -> bool:
        """Whether ``user`` may perform it now (cascade included)."""
        view = self.manager
        obj = view._obj
        if obj is None:
            self._instance()  # raises: bound to the class
        checker = _Checker(current_runtime(), user)
        return _available(checker, view, self.transition, view._read(obj))

    def check(self, user: t.Any = None) -> Availability:
        """Whether ``user`` may perform it now, and if not, why."""
        if self.transition.cascade:
            plan = self.plan(user)
            return Availability(plan.ok, list(plan.blockers), plan.error)
        # without a cascade the plan is this one step: no need to build it
        view = self.manager
        obj = self._instance()
        error = _Checker(current_runtime(), user).failure(view, self.transition, obj, view._read(obj))
        if error is None:
            return Availability(True, [])
        return Availability(False, list(error.reasons), error)

    def plan(self, user: t.Any = None) -> Plan:
        """Every step performing it would take, and every blocker."""
        self._instance()
        return self._plan(_Checker(current_runtime(), user))

    def _plan(self, checker: _Checker) -> Plan:
        view = self.manager
        obj = view._obj
        value = view._read(obj)
        root = Step(obj, view._name, self.transition, view._by_value.get(value, self.transition.target), value)
        error = checker.failure(view, self.transition, obj, value)
        if error is not None:
            return Plan([root], list(error.reasons), error)
        plan = Plan([root], [])
        if self.transition.cascade:
            _expand(plan, checker)
        return plan

    def __call__(self, user: t.Any = None, data: t.Mapping[str, t.Any] | None = None) -> TransitionResult:
        """Perform it for ``user`` with the submitted ``data``.

        :raise TransitionError: a subclass saying which check failed.
        """
        obj = self.manager._obj
        if obj is None:
            self._instance()  # raises: bound to the class
        # asked before planning, whose checks run the app's code
        savepoint = not _holds_nothing(obj)
        runtime = current_runtime()
        return self._perform(self._plan(_Checker(runtime, user)), user, data, runtime, savepoint)

    def perform_plan(
        self,
        plan: Plan,
        user: t.Any = None,
        data: t.Mapping[str, t.Any] | None = None,
        *,
        savepoint: bool = True,
    ) -> TransitionResult:
        """Perform a plan from :meth:`plan` that the caller has inspected (to
        ask for confirmation, say) without planning again. The state change
        still compares against what the plan saw, so a stale plan fails with
        :class:`StateConflict`.

        :param savepoint: ``False`` when the caller ends the transaction
            right after (commit, or rollback on failure), as a request does:
            a failure then rolls back the session's whole transaction rather
            than a savepoint, which saves two statements.
        """
        return self._perform(plan, user, data, current_runtime(), savepoint)

    def _perform(
        self, plan: Plan, user: t.Any, data: t.Mapping[str, t.Any] | None, runtime: Runtime, savepoint: bool
    ) -> TransitionResult:
        if plan.error is not None:
            raise self._refused(plan.error, user, data)
        try:
            cleaned = validate_data(self.transition, data)
        except ValidationFailed as e:
            raise self._refused(e, user, data) from None
        return execute(plan, user, cleaned, runtime, savepoint)

    def _refused(self, error: TransitionError, user: t.Any, data: t.Mapping[str, t.Any] | None) -> TransitionError:
        """Send :data:`transition_refused` for a perform of it that the
        checks (stages 1 to 5) refused with ``error``; return ``error`` for
        the caller to raise."""
        send_safely(transition_refused, self.transition, obj=self.obj, user=user, data=data, error=error)
        return error

    def perform_all(
        self,
        objects: t.Iterable[t.Any] | sa.Select[t.Any],
        user: t.Any = None,
        data: t.Mapping[str, t.Any] | None = None,
        *,
        session: SessionLike | None = None,
    ) -> BulkResult:
        """Perform it on many objects of the class in one transaction
        (``Project.state.withdraw.perform_all(selected, user)``), each
        checked as a single perform would check it. The refused are skipped
        and reported; the statements sent grow by chunks of objects, not per
        object.

        :param objects: model instances, or a ``select()`` of the model.
        :param session: where a ``select()`` runs; by default the
            extension's ``db.session``.
        """
        if self.manager._obj is not None:
            raise TypeError(
                f"perform_all is called on the class: {self.host.__name__}.{self.manager._name}."
                f"{self.transition.name}.perform_all(objects)"
            )
        from .bulk import perform_all

        return perform_all(self, objects, user, data, session=session)

    def __repr__(self) -> str:
        return f"<BoundTransition {self.transition.name} of {self.manager!r}>"


def available_transitions(view: StateManager, user: t.Any) -> dict[str, BoundTransition]:
    """``obj.state.transitions(user)``: the transitions ``user`` may perform
    now, in declaration order; on a class, every transition. One checker
    serves them all, so the roles loader runs once per object."""
    if view._obj is None:
        return {name: BoundTransition(tr, view) for name, tr in view._public_transitions.items()}
    checker = _Checker(current_runtime(), user)
    value = view._read(view._obj)
    # only those that may start from this state: most refusals cost nothing
    return {
        name: BoundTransition(transition, view)
        for name, transition in view._transitions_from.get(value, ())
        if _available(checker, view, transition, value)
    }


def _available(checker: _Checker, view: StateManager, transition: Transition, value: t.Any) -> bool:
    """Whether the checks pass for ``view``'s object in state ``value``,
    cascade included."""
    if checker.failure(view, transition, view._obj, value, explain=False) is not None:
        return False
    return not transition.cascade or BoundTransition(transition, view)._plan(checker).ok


def validate_data(transition: Transition, data: t.Mapping[str, t.Any] | None) -> dict[str, t.Any]:
    """Stage 5: the data the execute hooks receive, validated by the
    transition's form when it has one."""
    if data is not None and not isinstance(data, t.Mapping):
        raise ValidationFailed(errors={"": [f"data must be a mapping, not {type(data).__name__}"]})
    if transition.form is None:
        cleaned = dict(data or {})
    else:
        from .forms import validate_form_data

        cleaned, errors = validate_form_data(transition.form, data)
        if errors:
            raise ValidationFailed(errors=errors)
    unstorable = unstorable_text(cleaned)
    if unstorable:
        raise ValidationFailed(
            "; ".join(f"{field}: {' '.join(messages)}" for field, messages in unstorable.items()),
            errors=unstorable,
        )
    return cleaned


def _expand(plan: Plan, checker: _Checker) -> None:
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
            _preload(parents, attr)
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
                        resolved = targets[type(child), spec] = _child_transition(type(child), spec)
                    manager_name, transition = resolved
                    key = (id(child), manager_name)
                    first = reached.get(key)
                    if first is not None:
                        # reached again (a cycle, or two paths): fine if it
                        # ends where the plan already leaves it
                        if first.target is not transition.target:
                            twice = Reason(
                                "cascade",
                                gettext(
                                    "%(object)s: the cascade reaches it twice with "
                                    "conflicting transitions (%(first)s, %(second)s)",
                                    object=describe(child), first=first.name, second=transition.name,
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
                            blocker = Reason("cascade", f"{describe(child)}: {reason.message}")
                            plan.blockers.append(blocker)
                            if plan.error is None:
                                plan.error = _as_cascade_error(error, blocker)
                    next_frontier.append(len(steps))
                    steps.append(
                        # an undeclared value is a blocker above; the step is
                        # listed, never run
                        Step(
                            child, manager_name, transition, view._by_value.get(value, transition.target), value,
                            parent=i, depth=parent.depth + 1,
                        )
                    )
        frontier = next_frontier


def _as_cascade_error(error: TransitionError, reason: Reason) -> TransitionError:
    if isinstance(error, PermissionDenied):
        return PermissionDenied(reason.message, [reason], anonymous=error.anonymous)
    return type(error)(reason.message, [reason])


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


def _holds_nothing(obj: t.Any) -> bool:
    """Whether the transaction a perform on ``obj`` runs in holds nothing
    else: none is open yet, or the open one has only read (on one
    connection), and nothing waits to be flushed. A failure may then roll
    back the whole transaction instead of a savepoint, losing nothing but
    reads; two statements (SAVEPOINT, RELEASE) fewer."""
    state = _instance_state(obj)
    session = state.session if state is not None else None
    if (
        state is None
        or session is None
        or session.new or session.deleted or session.dirty
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
    state = _instance_state(root.obj)
    session = state.session if state is not None else None
    if state is not None and state.detached:
        raise TypeError(f"{describe(root.obj)} is detached; add it to a session first")
    try:
        if session is None:
            left_out = _run(plan, user, data, runtime, None, refused)
        elif savepoint:
            with session.begin_nested():
                left_out = _run(plan, user, data, runtime, session, refused)
        else:
            try:
                left_out = _run(plan, user, data, runtime, session, refused)
            except BaseException:
                session.rollback()
                raise
    except BaseException as e:
        for step in plan.steps:
            _restore(step)
        error: BaseException = e
        if session is not None and _is_write_conflict(e, session):
            error = StateConflict(
                reasons=[Reason("state", gettext("The object was changed at the same time by someone else"))]
            )
        roots = [root] if refused is None else [s for s in plan.steps if s.depth == 0]
        if isinstance(error, StateConflict) and session is not None:
            # what the checks saw is stale: read the rows again next time
            for step in roots:
                session.expire(step.obj, [_key_of(step)])
        if transition_failed.receivers:
            for step in roots:
                transition_failed.send(
                    step.transition, obj=step.obj, user=user, data=data, source=step.source,
                    target=step.target, exception=error,
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
                    transition_after, step.transition, guard=guard, obj=step.obj, user=user, data=data,
                    source=step.source, target=step.target,
                )
    return left_out


def _instance_state(obj: t.Any) -> orm.InstanceState[t.Any] | None:
    """``sa.inspect(obj, raiseerr=False)`` for an object: its state, or
    ``None`` when its class is not mapped. Without the inspection registry's
    walk of the class's bases, which cost more than the checks of a
    perform in memory."""
    try:
        return instance_state(obj)
    except AttributeError:
        return None


def _key_of(step: Step) -> str:
    view: StateManager = getattr(type(step.obj), step.manager)
    return view._key


def _restore(step: Step) -> None:
    key = _key_of(step)
    if sa.inspect(step.obj, raiseerr=False) is None:
        setattr(step.obj, key, step.seen)
    elif step.obj.__dict__.get(key, step.seen) != step.seen:
        set_committed_value(step.obj, key, step.seen)


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

#: the history columns every row of one compare-and-set group shares
_SHARED = ("model", "manager", "transition", "source", "target", "user_id", "at", "payload")


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
    refused: dict[int, TransitionError] | None = None,
) -> set[int]:
    """Every level of ``plan``: signals and execute hooks, then the
    compare-and-set and history records; the ids of the steps left out.

    :param refused: for a plan of many roots (a bulk perform): their
        compare-and-set runs first, and a root that a concurrent change took
        is left out with its cascade, its error under ``id(root)``, rather
        than failing the others.
    """
    if session is not None:
        # who and when, for the history records
        at = datetime.datetime.now(datetime.timezone.utc)
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
            view: StateManager = getattr(step.obj, step.manager)
            if transition_before.receivers:
                transition_before.send(
                    step.transition, obj=step.obj, user=user, data=data,
                    source=step.source, target=step.target,
                )
            assert view._hooks is not None
            for hook in view._hooks.executes.get(step.transition, ()):
                hook(step.obj, data)
        if session is None:
            for step in level:
                setattr(step.obj, _key_of(step), step.target.value)
            continue
        session.flush()
        if moved_first:
            for step in level:
                set_committed_value(step.obj, _key_of(step), step.target.value)
            continue
        recording = _recording_statement(session, level, payload, runtime)
        if recording is None:
            _move(session, plan.steps, level, payload, runtime, user_id, at)
            for step in level:
                set_committed_value(step.obj, _key_of(step), step.target.value)
        else:
            rows = record_rows(session, plan.steps, level, user_id, at, payload, runtime)
            ids = _compare_and_set_recording(session, level[0], recording, rows[0])
            attach_records(level, rows, ids, payload)
    return left_out


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


def _records_with_move(
    session: orm.Session, step: Step, payload: dict[str, t.Any] | None, runtime: Runtime
) -> bool:
    """Whether the compare-and-set may insert its history records in the
    same statement: on PostgreSQL (a data-modifying ``WITH``), unless the
    payload goes to a store outside the transaction first."""
    if payload and not runtime.store.backend.transactional:
        return False
    state = _instance_state(step.obj)
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
        session.execute(statement, {**row, "_sm_pk": identity[0], "_sm_seen": step.seen, "_sm_target": target}).scalars()
    )
    if not ids:
        raise _changed(describe(step.obj))
    set_committed_value(step.obj, _key_of(step), target)
    return ids


def _changed(who: str) -> StateConflict:
    return StateConflict(
        reasons=[Reason("state", gettext("%(object)s changed state while the transition ran", object=who))]
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
) -> list[Step]:
    """Move every step's object of ``level`` to its target with ``UPDATE``s
    guarded by the state the checks saw, a chunk of keys at a time, and
    write their history records; the steps moved. On PostgreSQL each chunk
    is one statement that also inserts the records; elsewhere the records
    follow as multi-row ``INSERT``s.

    :param refused: where a step whose row a concurrent change took goes
        (by ``id(step)``); without, such a row fails the whole level.
    """
    combined = _records_with_move(session, level[0], payload, runtime)
    # apart, the records (and the payload's blobs) are written once the rows
    # moved, so a conflict stores nothing outside the transaction
    rows: dict[int, dict[str, t.Any]] = (
        dict(enumerate(record_rows(session, steps, level, user_id, at, payload, runtime))) if combined else {}
    )
    groups: dict[tuple[type, str, Transition, t.Any], list[int]] = {}
    for i, step in enumerate(level):
        groups.setdefault((type(step.obj), step.manager, step.transition, step.seen), []).append(i)
    taken: set[int] = set()
    #: the record id of each step recorded with its move
    ids: dict[int, int] = {}
    for (host, manager, transition, seen), members in groups.items():
        view: StateManager = getattr(host, manager)
        hooks = view._hooks
        assert hooks is not None and hooks.cas is not None
        values = {"_sm_seen": seen, "_sm_target": transition.target.value}
        for start in range(0, len(members), CHUNK):
            chunk = members[start : start + CHUNK]
            identities = [identity_of(level[i].obj) for i in chunk]
            if rows and hooks.cas_many_recording is not None:
                # the record's key is the object's identity as a string, as
                # record_rows writes it
                shared = {name: rows[chunk[0]][name] for name in _SHARED}
                keys = {"_sm_pks": [i[0] for i in identities], "_sm_parents": [rows[i]["parent_id"] for i in chunk]}
                recorded = dict((object_id, id_) for id_, object_id in session.execute(
                    hooks.cas_many_recording, {**shared, **keys, **values}
                ))
                for i in chunk:
                    if rows[i]["object_id"] in recorded:
                        ids[i] = recorded[rows[i]["object_id"]]
                    else:
                        taken.add(i)
                missed = len(chunk) - len(recorded)
            else:
                pks = [i[0] if len(i) == 1 else i for i in identities]
                if refused is None:
                    result = session.execute(hooks.cas, {"_sm_pks": pks, **values})
                    missed = len(chunk) - result.rowcount  # type: ignore[attr-defined]
                else:
                    assert hooks.cas_returning is not None
                    returned = {tuple(row) for row in session.execute(hooks.cas_returning, {"_sm_pks": pks, **values})}
                    taken.update(i for i, identity in zip(chunk, identities) if tuple(identity) not in returned)
                    missed = len(chunk) - len(returned)
            if missed and refused is None:
                who = describe(level[chunk[0]].obj) if len(chunk) == 1 else f"{missed} of {len(chunk)} {host.__name__} objects"
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
        ids.update(zip(unrecorded, insert_records(session, [rows[i] for i in unrecorded])))
    attach_records(moved, [rows[i] for i in kept], [ids[i] for i in kept], payload)
    return moved
