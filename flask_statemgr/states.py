"""States: plain values, groups of states, and conditional states."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

from .hooks import mark

if t.TYPE_CHECKING:
    from .manager import StateManager

StateValue = t.Union[int, str]
Validator = t.Callable[[t.Any], bool]
Expression = t.Callable[[t.Any], "sa.ColumnElement[bool]"]
F = t.TypeVar("F", bound=t.Callable[..., t.Any])

_MISSING: t.Any = object()


class StateCheck(t.Protocol):
    """What ``obj.state.DRAFT`` and ``Model.state.DRAFT`` are to a type checker.

    On an instance it is a ``bool``; on the model class it is a SQL clause for
    ``select().where()``. Both support ``if``, ``~`` and ``where()`` typing.
    """

    def __bool__(self) -> bool: ...

    def __invert__(self) -> t.Any: ...

    def __clause_element__(self) -> sa.ColumnElement[bool]: ...


class State:
    """A state of a :class:`~flask_statemgr.StateManager`.

    :param value: what the column stores (``int`` or ``str``); a set of
        states makes a group. Omitted with ``enum=``: filled from the enum
        member of the same name.
    :param title: a human label.
    :param description: a longer human explanation.
    :param metadata: free extra fields, exported with the schema.
    """

    __slots__ = (
        "name",
        "value",
        "title",
        "description",
        "metadata",
        "manager",
        "members",
        "base",
        "default_validator",
        "default_expression",
        "values",
    )

    name: str
    #: what the column stores (a plain state's; nothing useful on others)
    value: t.Any
    manager: type[StateManager] | None
    #: raw column values this state covers (one for a plain state)
    values: frozenset[StateValue]

    def __init__(
        self,
        value: t.Any = _MISSING,
        title: str = "",
        description: str = "",
        **metadata: t.Any,
    ) -> None:
        self.name = ""
        self.title = title
        self.description = description
        self.metadata = metadata
        self.manager = None
        self.base: State | None = None
        self.default_validator: Validator | None = None
        self.default_expression: Expression | None = None
        if isinstance(value, (set, frozenset)):
            for member in value:
                if not isinstance(member, State):
                    raise TypeError(
                        f"A group's members must be states, not {member!r}"
                    )
            self.members: frozenset[State] = frozenset(value)
            self.value = None
        else:
            self.members = frozenset()
            self.value = value
        self.values = frozenset()

    # -- kinds ---------------------------------------------------------------

    @property
    def is_group(self) -> bool:
        return bool(self.members)

    @property
    def is_conditional(self) -> bool:
        return self.base is not None

    @property
    def is_plain(self) -> bool:
        return not self.members and self.base is None

    @property
    def kind(self) -> str:
        """``"state"``, ``"group"`` or ``"conditional"`` (the schema's words)."""
        if self.members:
            return "group"
        if self.base is not None:
            return "conditional"
        return "state"

    def leaves(self) -> frozenset[State]:
        """The plain and conditional states this state covers: a group's
        members, through nested groups."""
        if self.members:
            return frozenset(s for m in self.members for s in m.leaves())
        return frozenset({self})

    def plain_states(self) -> frozenset[State]:
        """The plain states this state covers (itself when plain)."""
        if self.members:
            return frozenset(s for m in self.members for s in m.plain_states())
        if self.base is not None:
            return self.base.plain_states()
        return frozenset({self})

    # -- building ------------------------------------------------------------

    def __or__(self, other: State) -> State:
        """``A | B`` is an anonymous group of both."""
        if not isinstance(other, State):
            return NotImplemented
        return State({self, other})

    def conditional(
        self,
        title: str,
        validator: Validator | None = None,
        expression: Expression | None = None,
        description: str = "",
        **metadata: t.Any,
    ) -> State:
        """A state that holds when the object is in this state **and**
        ``validator(obj)`` is true. ``expression(cls)`` gives the SQL clause.
        """
        if not self.is_plain:
            raise TypeError("Only a plain state can be the base of a conditional state")
        state = State(_MISSING, title, description, **metadata)
        state.base = self
        state.default_validator = validator
        state.default_expression = expression
        return state

    def validator(self, f: F) -> F:
        """Mark a model method as this conditional state's validator for that
        model (and its subclasses)."""
        self._require_conditional("validator")
        return mark(f, "validator", self)

    def expression(self, f: F) -> F:
        """Mark a model method as this conditional state's SQL expression for
        that model. It is called with the model class."""
        self._require_conditional("expression")
        return mark(f, "expression", self)

    def _require_conditional(self, what: str) -> None:
        if self.base is None:
            raise TypeError(f"{self!r} is not a conditional state and takes no {what}")

    # -- descriptor ----------------------------------------------------------

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @t.overload
    def __get__(self, instance: None, owner: type) -> State: ...

    @t.overload
    def __get__(self, instance: StateManager, owner: type) -> StateCheck: ...

    # Type checkers apply ``__get__`` to any attribute declared as a State
    # (a dataclass field, a property); only managers see a StateCheck.
    @t.overload
    def __get__(self, instance: object, owner: type) -> State: ...

    def __get__(self, instance: t.Any, owner: type) -> t.Any:
        if instance is None:
            return self
        return instance._test(self)

    def __repr__(self) -> str:
        owner = self.manager.__name__ if self.manager is not None else "?"
        return f"<State {owner}.{self.name or '(anonymous)'}>"
