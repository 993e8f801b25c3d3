"""States: plain values, groups of states, and conditional states.

How the types tell the truth
----------------------------

A state is reached three ways, and each means something else:

- ``ProjectState.DRAFT`` is the :class:`State` itself, typed ``State``;
- ``Project.state.DRAFT`` is a SQL clause (``_state = 1``), typed ``State``,
  which SQLAlchemy accepts as a clause (see below);
- ``project.state.DRAFT`` is ``True`` or ``False``, typed ``bool``.

A checker evaluates ``project.state.DRAFT`` in two steps: the type of
``project.state`` (what :meth:`StateManager.__get__` returns on the model),
then the attribute ``DRAFT`` of that type, whose ``State.__get__`` sees the
type of ``project.state`` as its ``instance``. Only that type carries the
class/instance difference across the second step, and it must also carry
every state and transition name of the user's manager (or typos would go
unseen). A user's ``class ProjectState(StateManager)`` is not generic, and a
``Self`` type cannot be re-parameterised (there are no higher-kinded types),
so the only types that have all of ``ProjectState``'s attributes are
``ProjectState`` and ``type[ProjectState]``. A wrapper such as
``ClassView[ProjectState]`` has none of them (``"ClassView[ProjectState]"
has no attribute "DRAFT"``, in mypy and pyright alike).

Two types for three forms: two forms must share one. Sharing the instance's
type between ``Project.state`` and ``project.state`` cannot work: a state
test would then have one type that is both a ``bool`` (to return from
``-> bool``) and a clause ``where()`` accepts, and Python has no
intersection types. So ``project.state`` is typed as the manager instance
(``State.__get__`` with a manager instance answers ``bool``) and
``Project.state`` as the manager class, ``type[ProjectState]``: there, as on
``ProjectState`` itself, ``State.__get__`` sees ``instance=None`` and answers
the ``State``. For that to be usable in SQL, ``State`` declares what a
clause offers (``__clause_element__``, ``~``, ``&``, ``|``); on a state that
is not reached through a model they raise a ``TypeError`` naming the right
spelling. What this costs, and cannot be caught without a checker plugin:
``select(...).where(ProjectState.DRAFT)`` type-checks (and fails when the
statement is built), ``Project.state.publish`` is typed ``Transition``
rather than the class-bound ``BoundTransition`` it is, and attributes of a
``State`` on a class-level test (``Project.state.DRAFT.title``) type-check.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

from .hooks import mark
from .typing import Expression, StateValue, Validator

if t.TYPE_CHECKING:
    from .manager import StateManager

#: a marked validator: a model method ``(self) -> bool``
_V = t.TypeVar("_V", bound=t.Callable[[t.Any], bool])
#: a marked expression: ``(cls) -> clause``, a function or a classmethod
_E = t.TypeVar(
    "_E", bound="t.Callable[[t.Any], sa.ColumnElement[bool]] | classmethod[t.Any, [], sa.ColumnElement[bool]]"
)

#: the value of a state declared without one (a group or a conditional
#: state); the manager fills in a plain state's
MISSING: t.Any = object()


class State:
    """A state of a :class:`~flask_statemgr.StateManager`.

    :param value: what the column stores (``int`` or ``str``); a set of
        states makes a group. Omitted with ``enum=``: filled from the enum
        member of the same name.
    :param title: a human label.
    :param description: a longer human explanation.
    :param metadata: free extra fields, exported with the schema.

    .. versionadded:: 0.1
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
    title: str
    description: str
    metadata: dict[str, t.Any]
    manager: type[StateManager] | None
    #: raw column values this state covers (one for a plain state)
    values: frozenset[StateValue]

    def __init__(
        self,
        value: t.Any = MISSING,
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
                    raise TypeError(f"A group's members must be states, not {member!r}")
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
        state = State(MISSING, title, description, **metadata)
        state.base = self
        state.default_validator = validator
        state.default_expression = expression
        return state

    def validator(self, f: _V) -> _V:
        """Mark a model method ``(self) -> bool`` as this conditional state's
        validator for that model (and its subclasses)."""
        self._require_conditional("validator")
        return mark(f, "validator", self)

    def expression(self, f: _E) -> _E:
        """Mark a model method (a classmethod, or a function taking the
        class) ``(cls) -> clause`` as this conditional state's SQL
        expression for that model."""
        self._require_conditional("expression")
        return mark(f, "expression", self)

    def _require_conditional(self, what: str) -> None:
        if self.base is None:
            raise TypeError(f"{self!r} is not a conditional state and takes no {what}")

    # -- descriptor ----------------------------------------------------------

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @t.overload
    def __get__(self, instance: None, owner: type) -> t.Self: ...

    @t.overload
    def __get__(self, instance: StateManager, owner: type) -> bool: ...

    # Type checkers apply ``__get__`` to any attribute declared as a State
    # (a dataclass field, a property); only managers see a bool.
    @t.overload
    def __get__(self, instance: object, owner: type) -> t.Self: ...

    def __get__(self, instance: t.Any, owner: type) -> t.Any:
        if instance is None:
            return self
        return instance._test(self)

    # -- as SQL ----------------------------------------------------------------
    # ``Model.state.DRAFT`` is typed as the State (see the module docstring)
    # but is a clause at run time, so these declare what the clause offers.
    # A State itself reaches them only when used in SQL without a model.

    def __clause_element__(self) -> sa.ColumnElement[bool]:
        raise self._unbound()

    def __invert__(self) -> sa.ColumnElement[bool]:
        raise self._unbound()

    def __and__(self, other: State | sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
        raise self._unbound()

    @t.overload
    def __or__(self, other: State) -> State: ...

    @t.overload
    def __or__(self, other: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]: ...

    def __or__(self, other: State | sa.ColumnElement[bool]) -> State | sa.ColumnElement[bool]:
        """``A | B`` is an anonymous group of both."""
        if not isinstance(other, State):
            raise self._unbound()
        return State({self, other})

    def _unbound(self) -> TypeError:
        owner = self.manager.__name__ if self.manager is not None else "its manager"
        return TypeError(
            f"{self!r} is not bound to a model: in SQL, test it through the model "
            f"(Model.<manager attribute>.{self.name or '<state>'}), not through {owner}"
        )

    def __repr__(self) -> str:
        owner = self.manager.__name__ if self.manager is not None else "?"
        return f"<State {owner}.{self.name or '(anonymous)'}>"
