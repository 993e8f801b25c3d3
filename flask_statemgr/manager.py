"""The :class:`StateManager` base class: declaring, binding and viewing."""

from __future__ import annotations

import typing as t
import uuid
import weakref
from enum import Enum

import sqlalchemy as sa
from sqlalchemy import event, orm
from sqlalchemy.sql.elements import conv

from .dialects import key_type
from .exceptions import UnknownStateValue
from .hooks import collect_marks
from .identity import describe
from .states import MISSING, State
from .tables import ensure_tables, history_table
from .transitions import Transition
from .typing import StateValue

if t.TYPE_CHECKING:
    from .bound import BoundTransition
    from .history import TransitionRecord

_T = t.TypeVar("_T")


class HostHooks:
    """What one model class contributes to one bound manager: its marked
    hooks and the compiled compare-and-set statement. Built once per model
    class, on first use."""

    __slots__ = (
        "preconditions",
        "executes",
        "validators",
        "expressions",
        "cas",
        "cas_one",
        "cas_recording",
        "cas_returning",
        "cas_json",
        "cas_json_returning",
        "default",
        "foldable",
        "_host",
        "_key",
        "_setting",
        "_many_recording",
    )

    cas: sa.Update | None
    cas_one: sa.Update | None
    cas_recording: sa.Insert | None
    cas_returning: sa.Update | None
    cas_json: sa.Update | None
    cas_json_returning: sa.Update | None
    default: t.Any
    #: the attributes whose pending changes a compare-and-set may also write
    foldable: frozenset[str]

    def __init__(self, manager: type[StateManager], host: type, key: str) -> None:
        self._host = host
        self._key = key
        self._setting: dict[tuple[str, ...], tuple[sa.Update, sa.Update | None]] = {}
        self.preconditions: dict[Transition, list[t.Callable[..., t.Any]]] = {}
        self.executes: dict[Transition, list[t.Callable[..., t.Any]]] = {}
        self.validators: dict[State, t.Callable[[t.Any], bool]] = {}
        self.expressions: dict[State, t.Callable[[t.Any], t.Any]] = {}
        own_states = set(manager.states().values())
        own_transitions = set(manager.transitions().values())
        for kind, target, func in collect_marks(host):
            if kind in ("precondition", "execute") and target in own_transitions:
                table = self.preconditions if kind == "precondition" else self.executes
                table.setdefault(target, []).append(func)
            elif kind == "validator" and target in own_states:
                self.validators[target] = func
            elif kind == "expression" and target in own_states:
                self.expressions[target] = func
        self.cas = _compile_cas(host, key)
        self.cas_one = _compile_cas(host, key, one=True)
        self.cas_recording = _compile_cas_recording(self.cas_one)
        self.cas_returning = _compile_cas_returning(self.cas)
        self.cas_json = _compile_cas(host, key, json_keys=True)
        self.cas_json_returning = _compile_cas_returning(self.cas_json)
        self._many_recording: dict[tuple[str, ...], sa.Insert | None] = {}
        self.default = _scalar_default(host, key)
        self.foldable = _foldable(host, key)

    def setting(self, keys: tuple[str, ...]) -> tuple[sa.Update, sa.Update | None]:
        """``cas`` and ``cas_json`` that also set the columns of the
        attributes ``keys`` (bound as ``_sm_set_0``, ``_sm_set_1``, ...),
        built once per tuple of keys."""
        found = self._setting.get(keys)
        if found is None:
            cas = _compile_cas(self._host, self._key, setting=keys)
            assert cas is not None
            found = self._setting[keys] = (cas, _compile_cas(self._host, self._key, setting=keys, json_keys=True))
        return found

    def many_recording(self, setting: tuple[str, ...] = ()) -> sa.Insert | None:
        """The PostgreSQL statement moving many rows (also setting the
        columns of ``setting``, as :meth:`setting`) and recording them,
        compiled on first use: it imports SQLAlchemy's PostgreSQL dialect,
        which an app on SQLite would otherwise pay for (30 ms) on its first
        transition."""
        if setting not in self._many_recording:
            self._many_recording[setting] = _compile_cas_many_recording(self._host, self._key, setting=setting)
        return self._many_recording[setting]


def _foldable(host: type, key: str) -> frozenset[str]:
    """The attributes of ``host`` whose pending changes the compare-and-set
    of state column ``key`` may write in place of the flush: plain columns
    of the state column's table, neither a key (the flush orders writes by
    them) nor a manager's column. None when the flush would write more than
    what changed: with a version counter, or a column of that table updated
    by a default or the server on every ``UPDATE``."""
    mapper: orm.Mapper[t.Any] | None = sa.inspect(host, raiseerr=False)
    if mapper is None or mapper.version_id_col is not None:
        return frozenset()
    table = mapper.columns[key].table
    if any(c.onupdate is not None or c.server_onupdate is not None for c in table.columns):
        return frozenset()
    managed = {view._key for view in bindings_of(host).values()}
    found = set()
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if (
            len(prop.columns) == 1
            and isinstance(column, sa.Column)
            and column.table is table
            and not column.primary_key
            and not column.foreign_keys
            and prop.key not in managed
        ):
            found.add(prop.key)
    return frozenset(found)


def _scalar_default(host: type, key: str) -> t.Any:
    """The column's scalar default (what the INSERT will write), or
    ``None``."""
    mapper: orm.Mapper[t.Any] | None = sa.inspect(host, raiseerr=False)
    if mapper is None:
        return None
    default = mapper.columns[key].default
    return getattr(default, "arg", None) if default is not None and default.is_scalar else None


def _compile_cas(
    host: type, key: str, *, one: bool = False, setting: tuple[str, ...] = (), json_keys: bool = False
) -> sa.Update | None:
    """``UPDATE table SET col = :target WHERE pk IN :pks AND col = :seen``,
    built once per model class; ``None`` for an unmapped class.

    :param one: for a single row, ``pk = :pk``: SQLAlchemy then sends it as
        compiled instead of expanding a list into it on every call. ``None``
        for a composite primary key.
    :param json_keys: the keys as one JSON array (``pk IN (SELECT value
        FROM json_each(:pks))``, see :func:`~.dialects.json_arrays`); ``None``
        for a key that is not one integer or string column.
    :param setting: attributes whose columns it sets too (see
        :func:`_setting`).
    """
    mapper: orm.Mapper[t.Any] | None = sa.inspect(host, raiseerr=False)
    if mapper is None:
        return None
    column = mapper.columns[key]
    table = column.table
    pk = list(table.primary_key.columns)
    if one:
        if len(pk) != 1:
            return None
        match = pk[0] == sa.bindparam("_sm_pk")
    elif json_keys:
        if key_type(pk) not in (int, str):
            return None
        given = sa.func.json_each(sa.bindparam("_sm_pks")).table_valued("value")
        match = pk[0].in_(sa.select(given.c.value))
    else:
        keys: sa.BindParameter[t.Any] = sa.bindparam("_sm_pks", expanding=True)
        match = pk[0].in_(keys) if len(pk) == 1 else sa.tuple_(*pk).in_(keys)
    return (
        sa.update(table)
        .where(match, column == sa.bindparam("_sm_seen"))
        .values({column.name: sa.bindparam("_sm_target"), **_setting(mapper, setting)})
    )


def _setting(mapper: orm.Mapper[t.Any], keys: tuple[str, ...]) -> dict[str, sa.BindParameter[t.Any]]:
    """The ``SET`` of attributes ``keys``'s columns, bound by position
    (``_sm_set_0``, ...): an attribute's name may be no parameter name."""
    columns = [mapper.columns[key] for key in keys]
    return {column.name: sa.bindparam(f"_sm_set_{i}", type_=column.type) for i, column in enumerate(columns)}


def _compile_cas_recording(cas: sa.Update | None) -> sa.Insert | None:
    """The compare-and-set of one row (``cas``, from ``_compile_cas(...,
    one=True)``) and its history record in one statement, for PostgreSQL (a
    data-modifying ``WITH``): the record is inserted only if the ``UPDATE``
    moved the row, and the answer is its id or nothing. One round trip
    instead of two, built once per model class."""
    if cas is None:
        return None
    pk = list(cas.table.primary_key.columns)  # type: ignore[attr-defined]
    moved = cas.returning(pk[0]).cte("statemgr_moved")
    c = history_table.c
    columns = [
        c.model,
        c.object_id,
        c.manager,
        c.transition,
        c.source,
        c.target,
        c.user_id,
        c.at,
        c.payload,
        c.parent_id,
    ]
    # bound by name from a row of history.record_rows
    record = sa.select(
        *(sa.cast(sa.bindparam(column.name, type_=column.type), column.type) for column in columns)
    ).select_from(moved)
    return sa.insert(history_table).from_select(columns, record).returning(c.id)


def _add_check(column: sa.Column[t.Any], table: sa.Table) -> None:
    """Give a state column's table the CHECK constraint on its legal values:
    a table constraint, which Alembic renders and compares."""
    info = column.info
    table.append_constraint(
        sa.CheckConstraint(
            column.in_(info["statemgr_values"]),
            # final: a MetaData naming convention must not rewrite the name
            # that migrations and ``flask statemgr check`` look for
            name=conv(f"ck_{table.name}_{column.name}"),
            info={"statemgr": info["statemgr"], "statemgr_values": info["statemgr_values"]},
        )
    )


class _StateColumn(orm.MappedColumn[t.Any]):
    """The ``mapped_column`` of :meth:`StateManager.column`.

    A copy of the table (``to_metadata``, Alembic's operations) copies the
    CHECK constraint with it, so the column's copy must not add another; but
    declarative copies a column declared on an abstract base or mixin into
    each subclass's table without any constraint, and that copy needs its
    own. Only this copy re-attaches the listener (an event with
    ``propagate=True`` would fire for every copy and double the CHECK).
    """

    def _copy(self, **kw: t.Any) -> t.Self:
        new = super()._copy(**kw)
        event.listen(new.column, "after_parent_attach", _add_check)
        return new


def _compile_cas_returning(cas: sa.Update | None) -> sa.Update | None:
    """``cas`` answering the primary keys of the rows it moved, so a bulk
    perform tells which objects a concurrent change took."""
    if cas is None:
        return None
    return cas.returning(*cas.table.primary_key.columns)  # type: ignore[attr-defined]


def _compile_cas_many_recording(host: type, key: str, setting: tuple[str, ...] = ()) -> sa.Insert | None:
    """The compare-and-set of many rows and the insert of their history
    records in one statement, for PostgreSQL::

        WITH moved AS (UPDATE t SET state = :target
                       FROM unnest(:pks, :parents) AS given(key, parent)
                       WHERE t.id = given.key AND t.state = :seen
                       RETURNING t.id, given.parent)
        INSERT INTO statemgr_history (...)
        SELECT :model, ..., CAST(moved.id AS VARCHAR), moved.parent FROM moved
        RETURNING id, object_id

    The keys travel as two array parameters: the statement's text is the
    same for any number of rows, where an expanding ``IN`` of thousands of
    keys (or a multi-row ``VALUES``) costs psycopg more to render and parse
    than the server spends on the change. A join rather than ``id =
    ANY(:pks)``: once psycopg prepares the statement, PostgreSQL's generic
    plan for ``ANY`` of an array of unknown size chose the state column's
    index and tested every row of a state against every key (three times
    slower at 5,000 rows). ``None`` for an unmapped class, a composite
    primary key, or one whose text form in SQL may differ from Python's
    ``str()`` (the record's ``object_id``). ``setting``: as for
    :func:`_compile_cas`.
    """
    mapper: orm.Mapper[t.Any] | None = sa.inspect(host, raiseerr=False)
    if mapper is None:
        return None
    from sqlalchemy.dialects import postgresql

    column = mapper.columns[key]
    table = column.table
    pks = list(table.primary_key.columns)
    if key_type(pks) not in (int, str, uuid.UUID):
        return None
    pk = pks[0]
    c = history_table.c
    keys = sa.bindparam("_sm_pks", type_=postgresql.ARRAY(pk.type))
    parents = sa.bindparam("_sm_parents", type_=postgresql.ARRAY(c.parent_id.type))
    given = (
        sa.func.unnest(keys, parents)
        .table_valued(sa.column("key", pk.type), sa.column("parent", c.parent_id.type))
        .render_derived("statemgr_given")
    )
    moved = (
        sa.update(table)
        .where(pk == given.c.key, column == sa.bindparam("_sm_seen"))
        .values({column.name: sa.bindparam("_sm_target"), **_setting(mapper, setting)})
        .returning(pk, given.c.parent)
        .cte("statemgr_moved")
    )
    shared = [c.model, c.manager, c.transition, c.source, c.target, c.user_id, c.at, c.payload]
    record = sa.select(
        *(sa.cast(sa.bindparam(col.name, type_=col.type), col.type) for col in shared),
        sa.cast(moved.c[pk.name], c.object_id.type),
        moved.c.parent,
    )
    return (
        sa.insert(history_table).from_select([*shared, c.object_id, c.parent_id], record).returning(c.id, c.object_id)
    )


#: what :func:`bindings_of` found, per model class
_bindings: weakref.WeakKeyDictionary[type, dict[str, StateManager]] = weakref.WeakKeyDictionary()


def bindings_of(model: type) -> dict[str, StateManager]:
    """The managers bound on a model class, by attribute name, base classes
    first. Found once per class (binding a manager forgets what was found);
    the dict is shared, not to be changed."""
    found = _bindings.get(model)
    if found is None:
        found = {}
        for klass in reversed(model.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, StateManager):
                    found[name] = value
        _bindings[model] = found
    return found


class AvailableTransitions(t.Protocol):
    """``obj.state.transitions``: a callable keeping its parameter's name
    (so ``transitions(bogus=1)`` is a type error)."""

    def __call__(self, user: t.Any = None) -> dict[str, BoundTransition]: ...


class _TransitionsAccess:
    """``Manager.transitions()`` lists every declared transition, internal
    ones included (introspection); ``obj.state.transitions(user)`` lists
    those available to that user now, never an internal one."""

    @t.overload
    def __get__(self, instance: None, owner: type[StateManager]) -> t.Callable[[], dict[str, Transition]]: ...

    @t.overload
    def __get__(self, instance: StateManager, owner: type[StateManager]) -> AvailableTransitions: ...

    def __get__(self, instance: StateManager | None, owner: type[StateManager]) -> t.Any:
        if instance is None:
            return owner._declared_transitions.copy
        return instance._available_transitions


class _CurrentAccess:
    """``obj.state.current``: the most specific state that holds, a
    conditional state that holds winning over its base.

    A descriptor rather than a property because type checkers apply
    :meth:`State.__get__` to a property of a manager that returns a State.
    """

    def __get__(self, instance: StateManager | None, owner: type) -> State:
        obj = instance._obj if instance is not None else None
        if instance is None or obj is None:
            raise AttributeError("current is only available on an instance")
        plain = instance._plain_state(obj)
        for conditional in instance._conditionals.get(plain, ()):
            if instance._holds(conditional, obj):
                return conditional
        return plain


class _Declarations(dict[str, t.Any]):
    """The namespace of a manager's class body. It refuses to rebind a name
    that holds a state or a transition: a plain class body would silently
    keep the second declaration and lose the first."""

    def __init__(self, owner: str) -> None:
        super().__init__()
        self._owner = owner

    def __setitem__(self, key: str, value: t.Any) -> None:
        previous = self.get(key)
        if isinstance(previous, (State, Transition)) and previous is not value:
            kind = "state" if isinstance(previous, State) else "transition"
            raise ValueError(f"{self._owner}.{key}: declared twice in the class body; the first {kind} would be lost")
        super().__setitem__(key, value)


class _ManagerType(type):
    """The metaclass of :class:`StateManager`, for :class:`_Declarations`."""

    @classmethod
    def __prepare__(mcs, name: str, bases: tuple[type, ...], /, **kwargs: t.Any) -> dict[str, t.Any]:
        return _Declarations(name)


class StateManager(metaclass=_ManagerType):
    """Declare states and transitions as class attributes of a subclass, then
    bind an instance to a model's column::

        class ProjectState(StateManager):
            DRAFT = State(1, "Draft")
            ...

        class Project(db.Model):
            _state: Mapped[int] = ProjectState.column(default=ProjectState.DRAFT)
            state = ProjectState("_state")

    :param attribute: the mapped attribute holding the state value, by name
        or as the ``mapped_column`` object itself.

    .. versionadded:: 0.1
    """

    _declared_states: t.ClassVar[dict[str, State]] = {}
    _declared_transitions: t.ClassVar[dict[str, Transition]] = {}
    #: the declared transitions that are not internal: what is offered
    _public_transitions: t.ClassVar[dict[str, Transition]] = {}
    _by_value: t.ClassVar[dict[t.Any, State]] = {}
    _conditionals: t.ClassVar[dict[State, tuple[State, ...]]] = {}
    #: state value -> (name, transition) of those that may start from it, in
    #: declaration order: what a listing checks further
    _transitions_from: t.ClassVar[dict[t.Any, tuple[tuple[str, Transition], ...]]] = {}
    _hosts: t.ClassVar[weakref.WeakSet[type]]
    enum: t.ClassVar[type[Enum] | None] = None

    # per binding (the descriptor on a model) and per view
    _key: str
    _name: str
    _host: type | None
    _obj: t.Any
    _hooks: HostHooks | None

    transitions: _TransitionsAccess = _TransitionsAccess()

    def __init_subclass__(cls, enum: type[Enum] | None = None, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._hosts = weakref.WeakSet()
        if enum is not None:
            cls.enum = enum
        states: dict[str, State] = dict(cls._declared_states)
        transitions: dict[str, Transition] = dict(cls._declared_transitions)
        reserved = set(dir(StateManager))
        bound_as: dict[int, str] = {}
        for name, value in list(vars(cls).items()):
            if isinstance(value, (State, Transition)) and name in reserved:
                raise ValueError(f"{cls.__name__}.{name}: the name {name!r} is reserved")
            if isinstance(value, State):
                if value.manager is not None and value.manager is not cls:
                    # an alias of an inherited state (``OLD = Base.DRAFT``)
                    raise ValueError(f"{cls.__name__}.{name}: {value!r} already belongs to {value.manager.__name__}")
                value.name = name
                value.manager = cls
                states[name] = value
            elif isinstance(value, Transition):
                if value.manager is not None and value.manager is not cls:
                    raise ValueError(
                        f"{cls.__name__}.{name}: {value!r} already belongs to "
                        f"{value.manager.__name__}; declare a Transition of its own"
                    )
                first = bound_as.setdefault(id(value), name)
                if first != name:
                    # one object cannot carry two names (``.name`` would be
                    # the last) nor be performed as two transitions
                    raise ValueError(
                        f"{cls.__name__}.{name}: the same Transition is already bound "
                        f"to {cls.__name__}.{first}; declare one Transition per name"
                    )
                transitions[name] = value
        cls._declared_states = states
        cls._resolve_states()
        cls._declared_transitions = transitions
        cls._public_transitions = {name: tr for name, tr in transitions.items() if not tr.internal}
        for name, transition in transitions.items():
            if transition.manager is None or name in vars(cls):
                transition._resolve(cls, name)
        cls._transitions_from = {
            value: tuple(
                (name, tr)
                for name, tr in cls._public_transitions.items()
                if value in tr.source_values or any(value in c.values for c in tr.conditional_sources)
            )
            for value in cls._by_value
        }

    @classmethod
    def _resolve_states(cls) -> None:
        states = cls._declared_states
        own = set(states.values())
        by_value: dict[t.Any, State] = {}
        if cls.enum is not None:
            for name, state in states.items():
                if state.value is MISSING and state.is_plain:
                    if name not in cls.enum.__members__:
                        raise ValueError(f"{cls.__name__}.{name}: {cls.enum.__name__} has no member {name!r}")
                    state.value = cls.enum[name].value
                elif isinstance(state.value, cls.enum):
                    state.value = state.value.value
        for name, state in states.items():
            where = f"{cls.__name__}.{name}"
            if state.is_group:
                for member in state.members:
                    if member not in own:
                        raise ValueError(f"{where}: group member {member!r} is not a state of {cls.__name__}")
                leaves = state.leaves()
                for leaf in sorted(leaves, key=lambda s: s.name):
                    if leaf.base is not None and leaf.base in leaves:
                        raise ValueError(
                            f"{where}: the group holds {leaf.name} and its base {leaf.base.name}, "
                            f"which already covers it; keep one of them"
                        )
            elif state.is_conditional:
                if state.base not in own:
                    raise ValueError(f"{where}: the base of a conditional state must be a state of {cls.__name__}")
            else:
                if state.value is MISSING or state.value is None:
                    raise ValueError(f"{where}: a plain state needs a value")
                if isinstance(state.value, bool) or not isinstance(state.value, (int, str)):
                    raise TypeError(f"{where}: a state's value must be an int or a str, not {state.value!r}")
                if state.value in by_value:
                    raise ValueError(
                        f"{where}: duplicate value {state.value!r}, already used by {by_value[state.value].name}"
                    )
                by_value[state.value] = state
        kinds = {type(v) for v in by_value}
        if len(kinds) > 1:
            raise TypeError(f"{cls.__name__}: state values must be all int or all str")
        if cls.enum is not None:
            members = {m.value: m for m in cls.enum}
            for value, state in by_value.items():
                if value not in members:
                    raise ValueError(
                        f"{cls.__name__}.{state.name}: {value!r} is not a value of "
                        f"{cls.enum.__name__}, whose members and the plain states must map 1:1"
                    )
            unmapped = [f"{cls.enum.__name__}.{m.name}" for v, m in members.items() if v not in by_value]
            if unmapped:
                raise ValueError(
                    f"{cls.__name__}: no state for {', '.join(unmapped)}; "
                    f"{cls.enum.__name__}'s members and the plain states must map 1:1"
                )
        for state in states.values():
            state.values = frozenset(s.value for s in state.plain_states())
        cls._by_value = by_value
        conditionals: dict[State, list[State]] = {}
        for state in states.values():
            if state.base is not None:
                conditionals.setdefault(state.base, []).append(state)
        cls._conditionals = {k: tuple(v) for k, v in conditionals.items()}

    # -- class-level introspection -------------------------------------------

    @classmethod
    def states(cls) -> dict[str, State]:
        """Every state (plain, group, conditional) by name, in declaration
        order."""
        return cls._declared_states.copy()

    @classmethod
    def column(cls, default: State | StateValue | None = None, **kwargs: t.Any) -> orm.MappedColumn[t.Any]:
        """A ``mapped_column`` of the right type, NOT NULL, indexed, with a
        CHECK constraint on the legal values named ``ck_<table>_<column>``
        (see :mod:`flask_statemgr.alembic` for migrations)."""
        values = list(cls._by_value)
        if values and all(isinstance(v, int) for v in values):
            type_: sa.types.TypeEngine[t.Any] = sa.Integer()
        else:
            type_ = sa.String(max((len(str(v)) for v in values), default=1))
        if isinstance(default, State):
            if not default.is_plain or default not in cls._declared_states.values():
                raise ValueError(f"{cls.__name__}.column: default must be a plain state of {cls.__name__}")
            default = default.value
        kwargs.setdefault("nullable", False)
        kwargs.setdefault("index", True)
        mapped = _StateColumn(type_, default=default, **kwargs)
        mapped.column.info["statemgr"] = cls.__name__
        mapped.column.info["statemgr_values"] = tuple(values)
        event.listen(mapped.column, "after_parent_attach", _add_check)
        return mapped

    # -- binding to a model ----------------------------------------------------

    # ``Mapped``: in the class body a checker sees the mapped_column as the
    # ``Mapped[int]`` it is annotated with
    def __init__(self, attribute: str | orm.MappedColumn[t.Any] | orm.Mapped[t.Any]) -> None:
        self._attribute = attribute
        self._key = attribute if isinstance(attribute, str) else ""
        self._name = ""
        self._host = None
        self._obj = None
        self._hooks = None
        self._hooks_by_host: dict[type, HostHooks] = {}
        self._class_views: dict[type, StateManager] = {}

    def __set_name__(self, owner: type, name: str) -> None:
        # the owner's subclasses may have been looked at already
        _bindings.clear()
        self._name = name
        self._host = owner
        self._cache_key = f"_statemgr_{name}"
        if not self._key:
            for attr, value in vars(owner).items():
                if value is self._attribute:
                    self._key = attr
                    break
            else:
                raise TypeError(
                    f"{owner.__name__}.{name}: the mapped_column given to "
                    f"{type(self).__name__} is not an attribute of {owner.__name__}"
                )
        type(self)._hosts.add(owner)
        metadata = getattr(owner, "metadata", None)
        # Flask-SQLAlchemy sends the extension's tables (which name no bind)
        # to the default database, so a model on another bind
        # (``__bind_key__``) does not take them into its database
        if isinstance(metadata, sa.MetaData) and metadata.info.get("bind_key") is None:
            ensure_tables(metadata)

    def hooks_for(self, host: type) -> HostHooks:
        """The hooks ``host`` (and its bases) declare for this binding."""
        hooks = self._hooks_by_host.get(host)
        if hooks is None:
            hooks = self._hooks_by_host[host] = HostHooks(type(self), host, self._key)
        return hooks

    def _view(self, host: type, obj: t.Any) -> t.Self:
        view = object.__new__(type(self))
        view._key = self._key
        view._name = self._name
        view._host = host
        view._obj = obj
        view._hooks = self.hooks_for(host)
        return view

    # On the model class the view is typed as the manager class, on an
    # instance as the manager instance: the two types that carry the
    # manager's names, which State.__get__ tells apart (see the states
    # module's docstring for why nothing else can).
    @t.overload
    def __get__(self, obj: None, owner: type) -> type[t.Self]: ...

    @t.overload
    def __get__(self, obj: object, owner: type) -> t.Self: ...

    def __get__(self, obj: t.Any, owner: type) -> t.Any:
        if obj is None:
            view = self._class_views.get(owner)
            if view is None:
                view = self._class_views[owner] = self._view(owner, None)
            return view
        instance_dict = obj.__dict__
        cached: StateManager | None = instance_dict.get(self._cache_key)
        if cached is None:
            cached = instance_dict[self._cache_key] = self._view(type(obj), obj)
        return cached

    def __set__(self, obj: t.Any, value: t.Never) -> t.NoReturn:
        raise AttributeError(
            f"{type(obj).__name__}.{self._name} is read-only: perform a transition "
            f"(or write {self._key!r} directly at your own risk)"
        )

    # -- views -----------------------------------------------------------------

    def _test(self, state: State) -> t.Any:
        """``obj.state.X`` (a bool) or ``Model.state.X`` (a SQL clause)."""
        obj = self._obj
        if obj is None:
            return self._clause(state)
        value = self._read(obj)
        if value not in state.values:
            return False
        if state.members:
            # a conditional member holds only when its validator does
            return any(
                not leaf.is_conditional or self._holds(leaf, obj) for leaf in state.leaves() if value in leaf.values
            )
        if state.base is None:
            return True
        return self._holds(state, obj)

    def _read(self, obj: t.Any) -> t.Any:
        try:
            value = obj.__dict__[self._key]
        except KeyError:
            # expired or deferred: let SQLAlchemy load it
            value = getattr(obj, self._key)
        if value is None and self._hooks is not None:
            # a new object not flushed yet will get the column's default
            value = self._hooks.default
        return value

    def _holds(self, conditional: State, obj: t.Any) -> bool:
        assert self._hooks is not None
        validator = self._hooks.validators.get(conditional)
        if validator is not None:
            return bool(validator(obj))
        if conditional.default_validator is not None:
            return bool(conditional.default_validator(obj))
        raise TypeError(f"{conditional!r} has no validator on {type(obj).__name__}")

    def _clause(self, state: State) -> sa.ColumnElement[bool]:
        host = self._host
        column = getattr(host, self._key)
        leaves = state.leaves()
        if state.members and any(leaf.is_conditional for leaf in leaves):
            return sa.or_(*(self._clause(leaf) for leaf in sorted(leaves, key=lambda s: s.name)))
        if state.base is None:
            if len(state.values) == 1:
                return column == next(iter(state.values))  # type: ignore[no-any-return]
            return column.in_(sorted(state.values))  # type: ignore[no-any-return]
        assert self._hooks is not None
        expression = self._hooks.expressions.get(state) or state.default_expression
        if expression is None:
            raise TypeError(f"{state!r} has no SQL expression on {getattr(host, '__name__', host)}")
        return sa.and_(column == state.base.value, expression(host))

    def _plain_state(self, obj: t.Any) -> State:
        """The plain state ``obj`` is in.

        :raise UnknownStateValue: the column holds a value no state declares.
        """
        value = self._read(obj)
        state = self._by_value.get(value)
        if state is None:
            host = type(obj)
            mapper: orm.Mapper[t.Any] | None = sa.inspect(host, raiseerr=False)
            column = mapper.columns[self._key] if mapper is not None else None
            raise UnknownStateValue(
                manager=type(self).__name__,
                model=host.__name__,
                attribute=self._key,
                column=f"{column.table.name}.{column.name}" if column is not None else self._key,
                value=value,
                obj=describe(obj),
            )
        return state

    @property
    def value(self) -> t.Any:
        """The raw value stored in the column."""
        return self._read(self._obj)

    current: _CurrentAccess = _CurrentAccess()

    @property
    def title(self) -> str:
        """The title of :attr:`current`."""
        return self.current.title

    def _available_transitions(self, user: t.Any = None) -> dict[str, BoundTransition]:
        return Transition.bound_class.available_on(self, user)

    def history(self) -> list[TransitionRecord]:
        """Every transition this manager performed on the object, oldest
        first."""
        # history is the performing layer, which builds on this module
        from .history import object_history

        return object_history(self._obj, self._name)

    def __repr__(self) -> str:
        if self._obj is not None:
            return f"<{type(self).__name__} {self._name}={self._read(self._obj)!r} of {self._obj!r}>"
        if self._host is not None:
            return f"<{type(self).__name__} {getattr(self._host, '__name__', self._host)}.{self._name}>"
        return f"<{type(self).__name__}>"
