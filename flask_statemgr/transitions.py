"""Transitions: the first-class noun that links every concern of a state
change."""

from __future__ import annotations

import typing as t

from typing_extensions import TypeVar

from .hooks import mark
from .states import State
from .typing import Permission

if t.TYPE_CHECKING:
    import sqlalchemy as sa

    from .bound import BoundTransition
    from .manager import StateManager
    from .results import BulkResult
    from .typing import SessionLike

#: the hooks' signatures: a decorator hands back the function it was given
#: (its own precise type), after checking it against these
_Pre = t.TypeVar("_Pre", bound=t.Callable[[t.Any], bool | str])
_Exec = t.TypeVar("_Exec", bound=t.Callable[[t.Any, dict[str, t.Any]], object])
_Perm = t.TypeVar("_Perm", bound=Permission)
#: the form class's instances, which a guarded view receives (a default
#: needs ``typing_extensions`` on Python 3.11)
_Form = TypeVar("_Form", default=t.Any)


class Transition(t.Generic[_Form]):
    """A transition from one or more source states to one target state.

    :param source: a state, a group, or a set of states.
    :param target: one plain state.
    :param title: a human label ("Publish").
    :param description: a longer explanation.
    :param roles: the roles that may perform it; ``None`` means anyone,
        including an anonymous user.
    :param form: a WTForms form class describing what the user supplies.
    :param requires: attribute path (``"review"``, ``"project.state"``) to
        the state that manager must be in.
    :param cascade: attribute (a relationship, or another manager on the same
        object) to the name of the transition to perform there.
    :param internal: it only happens as a cascaded step of another
        transition: never listed or offered, refused when performed
        directly, and its own roles and permission hooks are not asked of
        the user the cause was checked for.
    :param metadata: free extra fields, exported with the schema.

    Subclass it to add fields or default hooks.

    .. versionadded:: 0.1
    """

    name: str
    manager: type[StateManager] | None
    #: what ``obj.state.publish`` is an instance of; :mod:`.bound` sets it,
    #: because the performing layer builds on this one, which never imports
    #: it
    bound_class: t.ClassVar[type[BoundTransition]]

    def __init__(
        self,
        source: State | t.AbstractSet[State],
        target: State,
        title: str = "",
        description: str = "",
        *,
        roles: t.AbstractSet[str] | None = None,
        form: type[_Form] | None = None,
        requires: t.Mapping[str, State] | None = None,
        cascade: t.Mapping[str, str] | None = None,
        internal: bool = False,
        **metadata: t.Any,
    ) -> None:
        self.name = ""
        self.manager = None
        self._source = source
        self.target = target
        self.title = title
        self.description = description
        self.roles: frozenset[str] | None = frozenset(roles) if roles is not None else None
        # kept as given: a string has become a set of letters above, which
        # the class creation refuses naming the attribute
        self._given_roles = roles
        self.form = form
        self.requires: dict[str, State] = dict(requires or {})
        self.cascade: dict[str, str] = dict(cascade or {})
        self.internal = internal
        self.metadata = metadata
        self.permissions: list[Permission] = []
        #: filled by the manager when the class is created
        self.sources: frozenset[State] = frozenset()
        self.source_values: frozenset[t.Any] = frozenset()
        self.conditional_sources: tuple[State, ...] = ()
        #: neither internal nor with conditional sources or requires: its
        #: checks before the roles are one test of the state value
        self.plain: bool = not internal

    # -- hooks ---------------------------------------------------------------

    def precondition(self, f: _Pre) -> _Pre:
        """Mark a model method ``(self) -> bool | str`` as a precondition. A
        string (or ``False``) is a failure reason."""
        return mark(f, "precondition", self)

    def execute(self, f: _Exec) -> _Exec:
        """Mark a model method ``(self, data) -> None`` to run with the state
        change, inside its savepoint."""
        return mark(f, "execute", self)

    def permission(self, f: _Perm) -> _Perm:
        """Register ``f(obj, user) -> bool`` as a permission check for every
        model this transition is used on."""
        self.permissions.append(f)
        return f

    # -- class creation ------------------------------------------------------

    def _resolve(self, manager: type[StateManager], name: str) -> None:
        """Validate the declaration against ``manager``'s states."""
        self.name = name
        self.manager = manager
        where = f"{manager.__name__}.{name}"
        roles = self._given_roles
        if isinstance(roles, (str, bytes)):
            raise TypeError(
                f"{where}: roles must be a set of role names, not the string {roles!r} (write roles={{{roles!r}}})"
            )
        if self.roles is not None and not all(isinstance(role, str) for role in self.roles):
            raise TypeError(f"{where}: roles must be role names (str), not {sorted(map(repr, self.roles))}")
        source = self._source
        if isinstance(source, State):
            given: frozenset[State] = frozenset({source})
        elif isinstance(source, (set, frozenset)):
            given = frozenset(source)
        else:
            raise TypeError(f"{where}: source must be a state or a set of states")
        own = set(manager.states().values())
        expanded: set[State] = set()
        conditionals: set[State] = set()
        for state in given:
            if not isinstance(state, State) or state not in own:
                raise ValueError(f"{where}: source {state!r} is not a state of {manager.__name__}")
            for leaf in state.leaves():
                if leaf.is_conditional:
                    conditionals.add(leaf)
                expanded.add(leaf)
        if not isinstance(self.target, State) or self.target not in own:
            raise ValueError(f"{where}: target {self.target!r} is not a state of {manager.__name__}")
        if not self.target.is_plain:
            raise TypeError(f"{where}: target must be a plain state, not a {self.target.kind}")
        for path, state in self.requires.items():
            if not isinstance(path, str) or not path:
                raise TypeError(f"{where}: requires keys are attribute paths, not {path!r}")
            if not isinstance(state, State):
                raise TypeError(f"{where}: requires[{path!r}] must be a State, not {state!r}")
        for attr, transition in self.cascade.items():
            if not isinstance(attr, str) or not attr or "." in attr:
                raise TypeError(f"{where}: cascade keys are attribute names, not {attr!r}")
            if not isinstance(transition, str):
                raise TypeError(f"{where}: cascade[{attr!r}] must name a transition, not {transition!r}")
        if self.form is not None and not (isinstance(self.form, type) and hasattr(self.form, "validate")):
            raise TypeError(f"{where}: form must be a WTForms form class")
        self.sources = frozenset(expanded)
        self.source_values = frozenset(s.value for s in expanded if not s.is_conditional)
        self.conditional_sources = tuple(sorted(conditionals, key=lambda s: s.name))
        self.plain = not (self.internal or self.conditional_sources or self.requires)

    # -- descriptor ----------------------------------------------------------

    @t.overload
    def __get__(self, instance: None, owner: type) -> t.Self: ...

    @t.overload
    def __get__(self, instance: StateManager, owner: type) -> BoundTransition: ...

    # Type checkers apply ``__get__`` to any attribute declared as a
    # Transition (``Step.transition``); only managers bind it.
    @t.overload
    def __get__(self, instance: object, owner: type) -> t.Self: ...

    def __get__(self, instance: t.Any, owner: type) -> t.Any:
        if instance is None:
            return self
        # kept on the view (which is kept on its object), where the next
        # lookup finds it before this non-data descriptor
        bound = instance.__dict__[self.name] = self.bound_class(self, instance)
        return bound

    def perform_all(
        self,
        objects: t.Iterable[t.Any] | sa.Select[t.Any],
        user: t.Any = None,
        data: t.Mapping[str, t.Any] | None = None,
        *,
        session: SessionLike | None = None,
    ) -> BulkResult:
        """:meth:`BoundTransition.perform_all` on the model the objects are
        of. Type checkers see ``Project.state`` as the manager class, so
        ``Project.state.withdraw.perform_all(...)`` reaches this method in
        their eyes (and a class-bound transition at run time).

        .. versionadded:: 0.2
        """
        return self.bound_class.perform_all_of(self, objects, user, data, session=session)

    def __repr__(self) -> str:
        owner = self.manager.__name__ if self.manager is not None else "?"
        return f"<Transition {owner}.{self.name}>"
