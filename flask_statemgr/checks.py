"""The checks a transition passes before it runs, one function per
:class:`Stage`, in the order :meth:`Checker.failure` asks them.

Each stage function answers ``None`` when its stage passes, else the error a
perform raises, with its reasons. :meth:`Checker.passes` decides the same
without building them: the yes/no answer a listing or ``is_available`` asks
per object, where messages would cost more than the checks.
"""

from __future__ import annotations

import enum
import logging
import typing as t
from collections import abc

from .exceptions import (
    LoaderError,
    PermissionDenied,
    PreconditionFailed,
    RequirementsUnmet,
    StateConflict,
    TransitionError,
    ValidationFailed,
)
from .i18n import gettext, is_text, memo, text
from .identity import describe, is_anonymous
from .manager import StateManager
from .results import Reason
from .runtime import Runtime
from .storable import unstorable_text

if t.TYPE_CHECKING:
    from .states import State
    from .transitions import Transition


class Stage(enum.IntEnum):
    """The stages a transition is checked in, in order; a :class:`Reason`'s
    ``code`` is a stage's :attr:`code`.

    .. versionadded:: 0.2
    """

    STATE = 1
    REQUIRES = 2
    PERMISSION = 3
    PRECONDITION = 4
    CASCADE = 5

    @property
    def code(self) -> str:
        """The stage as :attr:`Reason.code` and the JSON name it:
        ``"state"``."""
        return self.name.lower()

    def reason(self, message: str) -> Reason:
        """A :class:`Reason` of this stage."""
        return Reason(self.code, message)


logger: logging.Logger = logging.getLogger(__name__)

#: role sets (frozensets) a roles loader answered that were found to hold
#: only strings: a loader usually answers the same few sets (a user's own),
#: and a frozenset caches its hash, so the next check is one lookup
_checked_role_sets: set[frozenset[t.Any]] = set()
_CHECKED_ROLE_SETS_MAX = 1024


class Checker:
    """Runs the pre-execution checks for one user, remembering each object's
    roles so a listing or a cascade asks the roles loader once per object.

    .. versionadded:: 0.2
    """

    __slots__ = ("runtime", "user", "_roles", "_reasons")

    def __init__(self, runtime: Runtime, user: t.Any) -> None:
        self.runtime: Runtime = runtime
        self.user: t.Any = user
        self._roles: dict[int, t.AbstractSet[str]] = {}
        self._reasons: dict[t.Hashable, t.Any] | None = None

    def roles(self, obj: t.Any) -> t.AbstractSet[str]:
        """The user's roles on ``obj``, asked of the roles loader once."""
        return roles_of(self.runtime, self.user, obj, self._roles)

    def passes(
        self, view: StateManager, transition: Transition, obj: t.Any, value: t.Any, cascaded: bool = False
    ) -> bool:
        """Whether :meth:`failure` would answer ``None``: :func:`passes`
        with this checker's user and roles."""
        return passes(self.runtime, self.user, view, transition, obj, value, cascaded, self._roles)

    def failure(
        self,
        view: StateManager,
        transition: Transition,
        obj: t.Any,
        value: t.Any,
        cascaded: bool = False,
    ) -> TransitionError | None:
        """The first failing stage for one step, with its reasons, or
        ``None``.

        :param cascaded: the step is caused by another's cascade. An
            internal transition is refused unless it is; when it is, its
            own roles and permission hooks are not asked (the cause's were).
        """
        if transition.internal and not cascaded:
            # before the state: that it is never performed directly does
            # not depend on the object
            return check_internal(self, transition)
        # a plain transition from one of its sources passes stages 1 and 2:
        # a perform's usual case, tested without their calls
        if not (transition.plain and value in transition.source_values):
            error = check_state(self, view, transition, obj, value) or check_requires(self, transition, obj)
            if error is not None:
                return error
        return (
            # an internal step's permission is its cause's
            (None if cascaded and transition.internal else check_permission(self, transition, obj))
            or check_preconditions(self, view, transition, obj)
        )

    def reason(self, stage: Stage, key: t.Hashable, message: t.Callable[..., str], *args: t.Any) -> Reason:
        """The :class:`Reason` of ``stage`` saying ``message(*args)``, made
        once per app context and locale (:func:`~flask_statemgr.i18n.memo`)
        for messages that follow from ``key``: the declarations (and the
        value) it names. (Arguments, not a closure: a listing asks this per
        refusal, and a closure's cells slow the whole calling function.)"""
        return memoized_reason(self.reasons(), stage, key, message, *args)

    def reasons(self) -> dict[t.Hashable, t.Any]:
        """Where this checker's reasons are kept: :func:`~flask_statemgr.i18n.memo`,
        looked up once."""
        reasons = self._reasons
        if reasons is None:
            reasons = self._reasons = memo()
        return reasons

    def denied(self, key: t.Hashable, message: t.Callable[..., str], *args: t.Any) -> PermissionDenied:
        """A refusal of permission for this user: an anonymous one reads the
        same reason (the 401 and the 403 of one refusal say the same thing),
        then that logging in comes first."""
        anonymous = is_anonymous(self.user)
        if anonymous:
            reason = self.reason(Stage.PERMISSION, (key, "anonymous"), _log_in_first, message, *args)
        else:
            reason = self.reason(Stage.PERMISSION, key, message, *args)
        return PermissionDenied("", [reason], anonymous=anonymous)


def memoized_reason(
    reasons: dict[t.Hashable, t.Any], stage: Stage, key: t.Hashable, message: t.Callable[..., str], *args: t.Any
) -> Reason:
    """``reasons[key]``, made first as the reason of ``stage`` saying
    ``message(*args)``."""
    reason: Reason | None = reasons.get(key)
    if reason is None:
        reason = reasons[key] = stage.reason(message(*args))
    return reason


def _log_in_first(message: t.Callable[..., str], *args: t.Any) -> str:
    return gettext("%(reason)s; log in first", reason=message(*args))


def roles_of(
    runtime: Runtime, user: t.Any, obj: t.Any, known: dict[int, t.AbstractSet[str]] | None = None
) -> t.AbstractSet[str]:
    """The roles of ``user`` on ``obj`` from the roles loader (checked with
    :func:`checked_roles`), or from ``known``, where they are kept by
    ``id(obj)``."""
    if known is not None:
        roles = known.get(id(obj))
        if roles is not None:
            return roles
    roles = runtime.load_roles(obj, user)
    # a frozenset found good before is good: most loaders answer a few
    if type(roles) is not frozenset or roles not in _checked_role_sets:
        roles = checked_roles(roles, obj, user)
    if known is not None:
        known[id(obj)] = roles
    return roles


def passes(
    runtime: Runtime,
    user: t.Any,
    view: StateManager,
    transition: Transition,
    obj: t.Any,
    value: t.Any,
    cascaded: bool = False,
    known_roles: dict[int, t.AbstractSet[str]] | None = None,
) -> bool:
    """Whether :meth:`Checker.failure` would answer ``None``, without
    building an error: the same checks in the same order, stopping at the
    first refusal. Listings and ``is_available`` ask it per object, so it
    tests inline what it can rather than calling the stage functions.

    .. versionadded:: 0.2
    """
    if transition.plain:
        if value not in transition.source_values:
            return False
    else:
        if transition.internal and not cascaded:
            return False
        if value not in transition.source_values and not any(
            value in c.values and view._holds(c, obj) for c in transition.conditional_sources
        ):
            return False
        if not all(requirement_holds(obj, path, state) for path, state in transition.requires.items()):
            return False
    # an internal step's permission is its cause's
    if not (cascaded and transition.internal):
        roles = transition.roles
        if roles is not None:
            # roles_of, inline: this is the check a listing makes per object
            held = None if known_roles is None else known_roles.get(id(obj))
            if held is None:
                held = runtime.load_roles(obj, user)
                if type(held) is not frozenset or held not in _checked_role_sets:
                    held = checked_roles(held, obj, user)
                if known_roles is not None:
                    known_roles[id(obj)] = held
            if roles.isdisjoint(held):
                return False
        if transition.permissions and not all(permission(obj, user) for permission in transition.permissions):
            return False
    preconditions = view._hooks.preconditions.get(transition)  # type: ignore[union-attr]
    if preconditions:
        for precondition in preconditions:
            outcome = precondition(obj)
            if outcome is not True and (not outcome or is_text(outcome)):
                return False
    return True


def checked_roles(roles: t.Any, obj: t.Any, user: t.Any) -> t.AbstractSet[str]:
    """``roles`` if the roles loader answered a set of role names for
    ``obj`` and ``user``.

    :raise LoaderError: it answered something else (``None``, a list, a
        string): the message names the loader, the object and the answer,
        and it is logged, since the user only sees a 500.

    .. versionadded:: 0.2
    """
    if isinstance(roles, abc.Set) and all(isinstance(role, str) for role in roles):
        if type(roles) is frozenset:
            if len(_checked_role_sets) >= _CHECKED_ROLE_SETS_MAX:
                _checked_role_sets.clear()
            _checked_role_sets.add(roles)
        return t.cast("t.AbstractSet[str]", roles)
    error = LoaderError(
        f"The roles loader (@statemgr.roles_loader, else {type(obj).__name__}.roles_for) returned {roles!r} "
        f"for {describe(obj)} and user {user!r}; it must return a set of role names, such as {{'owner'}} or set()"
    )
    logger.error("%s", error)
    raise error


def check_internal(checker: Checker, transition: Transition) -> TransitionError:
    """An internal transition performed directly: always refused."""
    reason = checker.reason(Stage.PERMISSION, ("internal", transition), internal_message, transition)
    return PermissionDenied("", [reason])


def internal_message(transition: Transition) -> str:
    """Why an internal transition is not performed directly."""
    return gettext("%(transition)s only happens as a step of another transition", transition=title_of(transition))


def check_state(
    checker: Checker, view: StateManager, transition: Transition, obj: t.Any, value: t.Any
) -> TransitionError | None:
    """Stage 1: the object is in one of the transition's source states."""
    if value in transition.source_values or (
        # tested first: an empty any() still builds its generator
        transition.conditional_sources
        and any(value in c.values and view._holds(c, obj) for c in transition.conditional_sources)
    ):
        return None
    return state_conflict(checker.reasons(), view, transition, value)


def refused_by_state(transition: Transition, value: t.Any) -> bool:
    """Whether the state alone refuses ``transition``: a plain one (see
    :attr:`Transition.plain`) that does not start from ``value``. Its
    refusal then follows from the declarations and the value, so listings
    share it (:func:`state_conflict`)."""
    return transition.plain and value not in transition.source_values


def state_conflict(
    reasons: dict[t.Hashable, t.Any], view: StateManager, transition: Transition, value: t.Any
) -> StateConflict:
    """The refusal of ``transition`` from ``value``, its reason kept in
    ``reasons`` (:func:`~flask_statemgr.i18n.memo`)."""
    key = ("state", transition, view._name, value)
    return StateConflict("", [memoized_reason(reasons, Stage.STATE, key, state_message, view, transition, value)])


def state_message(view: StateManager, transition: Transition, value: t.Any) -> str:
    """Why ``transition`` cannot start from ``value`` of ``view``."""
    state = view._by_value.get(value)
    if state is None:
        return gettext(
            "%(transition)s is not possible: %(manager)s holds %(value)s, which is not a declared state",
            transition=title_of(transition),
            manager=view._name,
            value=repr(value),
        )
    return gettext(
        "%(transition)s is not possible while %(manager)s is %(state)s",
        transition=title_of(transition),
        manager=view._name,
        state=state.title or state.name,
    )


def check_requires(checker: Checker, transition: Transition, obj: t.Any) -> TransitionError | None:
    """Stage 2: every manager the transition requires is in its state."""
    if not transition.requires:
        return None
    unmet = [
        checker.reason(Stage.REQUIRES, ("requires", path, state), requires_message, path, state)
        for path, state in transition.requires.items()
        if not requirement_holds(obj, path, state)
    ]
    return RequirementsUnmet("", unmet) if unmet else None


def requires_message(path: str, state: State) -> str:
    """Why a requirement of the manager at ``path`` is unmet."""
    return gettext(
        "The %(object)s must be %(state)s first",
        object=path_words(path),
        state=text(state.title or state.name).lower(),
    )


def check_permission(checker: Checker, transition: Transition, obj: t.Any) -> TransitionError | None:
    """Stage 3: the user has one of the transition's roles and every
    permission hook allows it."""
    roles = transition.roles
    if roles is not None and roles.isdisjoint(checker.roles(obj)):
        if not roles:
            # logging in would not help either
            reason = checker.reason(Stage.PERMISSION, ("no one", transition), no_one_message, transition)
            return PermissionDenied("", [reason])
        return checker.denied(("roles", transition), roles_message, transition)
    for permission in transition.permissions:
        if not permission(obj, checker.user):
            return checker.denied(("permission", transition), permission_message, transition)
    return None


def no_one_message(transition: Transition) -> str:
    """Why a transition with no roles (``roles=set()``) is refused."""
    return gettext("No one may %(transition)s this", transition=text(title_of(transition)).lower())


def roles_message(transition: Transition) -> str:
    """Why a user without the transition's roles is refused."""
    assert transition.roles
    return gettext(
        "%(transition)s needs the role %(roles)s",
        transition=title_of(transition),
        roles=gettext(" or ").join(sorted(transition.roles)),
    )


def permission_message(transition: Transition) -> str:
    """Why a permission hook refused the user."""
    return gettext("You may not %(transition)s this", transition=text(title_of(transition)).lower())


def check_preconditions(
    checker: Checker, view: StateManager, transition: Transition, obj: t.Any
) -> TransitionError | None:
    """Stage 4: every precondition hook of the model holds."""
    assert view._hooks is not None
    preconditions = view._hooks.preconditions.get(transition)
    if not preconditions:
        return None
    failed = []
    for precondition in preconditions:
        outcome = precondition(obj)
        if is_text(outcome):
            failed.append(Stage.PRECONDITION.reason(outcome))
        elif not outcome:
            failed.append(
                checker.reason(
                    Stage.PRECONDITION, ("precondition", precondition), unmet_message, transition, precondition
                )
            )
    return PreconditionFailed("", failed) if failed else None


def validate_data(transition: Transition, data: t.Mapping[str, t.Any] | None) -> dict[str, t.Any]:
    """The data stage, after the plan's: the data the execute hooks receive,
    validated by the transition's form when it has one.

    .. versionadded:: 0.2
    """
    if data is not None and not isinstance(data, abc.Mapping):
        raise ValidationFailed(errors={"": [f"data must be a mapping, not {type(data).__name__}"]})
    if transition.form is None:
        cleaned = dict(data or {})
    else:
        # the forms module is the describing layer, above this one; only a
        # transition with a form needs it (and WTForms)
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


def title_of(transition: Transition) -> str:
    """The transition as messages name it: its title, else its name."""
    return transition.title or transition.name


def path_words(path: str) -> str:
    """What a ``requires`` path names, as a person reads it: the object that
    holds the manager (``project.state`` is "project", ``chapter.project.state``
    "chapter's project"), or the manager on the object itself (``review``)."""
    parts = path.split(".")
    return "'s ".join(part.replace("_", " ") for part in (parts[:-1] or parts))


def unmet_message(transition: Transition, precondition: t.Callable[..., t.Any]) -> str:
    """The reason for a precondition that answered ``False``: the first line
    of its docstring, else its name in words (``_has_title``: "has
    title")."""
    doc = (precondition.__doc__ or "").strip()
    if doc:
        return doc.splitlines()[0]
    words = precondition.__name__.strip("_").replace("_", " ")
    return gettext(
        "%(transition)s is not possible yet: “%(precondition)s” is not met",
        transition=title_of(transition),
        precondition=words,
    )


def requirement_holds(obj: t.Any, path: str, state: State) -> bool:
    """Whether the manager at ``path`` from ``obj`` is in ``state``; a missing
    related object on the way (``None``) is an unmet requirement."""
    target: t.Any = obj
    for part in path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise TypeError(f"requires path {path!r}: {type(target).__name__} has no attribute {part!r}") from None
        if target is None:
            return False
    if not isinstance(target, StateManager) or target._obj is None:
        raise TypeError(f"requires path {path!r} on {type(obj).__name__} does not lead to a state manager")
    return bool(target._test(state))
