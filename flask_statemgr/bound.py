"""The bound transition (``project.state.publish``): what a caller checks,
plans and performs. A perform reads top to bottom through the performing
layer: :mod:`.checks` for the root step, :mod:`.cascade` for the steps it
causes, :func:`.checks.validate_data` for the data, then :mod:`.execute`.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa

# Flask's own context variable, as in .runtime
from flask.globals import _cv_app

from .bulk import perform_all
from .cascade import expand
from .checks import Checker, passes, refused_by_state, state_conflict, validate_data
from .exceptions import TransitionError, ValidationFailed
from .execute import execute, holds_nothing
from .i18n import memo
from .manager import StateManager, bindings_of
from .results import Availability, BulkResult, Plan, Step, TransitionResult
from .runtime import DEFAULT_RUNTIME, Runtime, current_runtime
from .signals import send_safely, transition_refused
from .transitions import Transition

if t.TYPE_CHECKING:
    from .typing import SessionLike


class BoundTransition:
    """A transition bound to a model instance (``project.state.publish``) or
    to a model class (``Project.state.publish``).

    .. versionadded:: 0.1

    .. versionchanged:: 0.2
        Defined in ``flask_statemgr.bound`` (was ``engine``).
    """

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
                f"{self.transition!r} is bound to the class {self.host.__name__}; use it through an instance"
            )
        return obj

    def is_available(self, user: t.Any = None) -> bool:
        """Whether ``user`` may perform it now (cascade included)."""
        view = self.manager
        obj = view._obj
        if obj is None:
            self._instance()  # raises: bound to the class
        transition = self.transition
        value = view._read(obj)
        if not transition.cascade:
            # one check: no checker to keep roles for the next
            # current_runtime(), inline: its call is a tenth of this answer
            ctx = _cv_app.get(None)
            runtime = DEFAULT_RUNTIME if ctx is None else ctx.app.extensions.get("statemgr", DEFAULT_RUNTIME)
            return passes(runtime, user, view, transition, obj, value)
        checker = Checker(current_runtime(), user)
        return checker.passes(view, transition, obj, value) and self.plan_with(checker).ok

    def check(self, user: t.Any = None) -> Availability:
        """Whether ``user`` may perform it now, and if not, why."""
        if self.transition.cascade:
            plan = self.plan(user)
            return Availability(plan.ok, list(plan.blockers), plan.error)
        # without a cascade the plan is this one step: no need to build it
        view = self.manager
        obj = view._obj
        if obj is None:
            self._instance()  # raises: bound to the class
        transition = self.transition
        value = view._read(obj)
        if refused_by_state(transition, value):
            # what the checks would answer first, without a checker
            error: TransitionError | None = state_conflict(memo(), view, transition, value)
        else:
            error = Checker(current_runtime(), user).failure(view, transition, obj, value)
        if error is None:
            return Availability(True, [])
        # the error's own list: both are new
        return Availability(False, error.reasons, error)

    def plan(self, user: t.Any = None) -> Plan:
        """Every step performing it would take, and every blocker."""
        self._instance()
        return self.plan_with(Checker(current_runtime(), user))

    def plan_with(self, checker: Checker) -> Plan:
        """:meth:`plan` with a :class:`~flask_statemgr.checks.Checker` the
        caller keeps, so a listing or a bulk perform asks the roles loader
        once per object, not once per transition.

        .. versionadded:: 0.2
        """
        view = self.manager
        obj = view._obj
        value = view._read(obj)
        root = Step(obj, view._name, self.transition, view._by_value.get(value, self.transition.target), value)
        error = checker.failure(view, self.transition, obj, value)
        if error is not None:
            return Plan([root], list(error.reasons), error)
        plan = Plan([root], [])
        if self.transition.cascade:
            expand(plan, checker)
        return plan

    def __call__(self, user: t.Any = None, data: t.Mapping[str, t.Any] | None = None) -> TransitionResult:
        """Perform it for ``user`` with the submitted ``data``.

        :raise TransitionError: a subclass saying which check failed.
        """
        obj = self.manager._obj
        if obj is None:
            self._instance()  # raises: bound to the class
        # asked before planning, whose checks run the app's code
        savepoint = not holds_nothing(obj)
        runtime = current_runtime()
        return self._perform(self.plan_with(Checker(runtime, user)), user, data, runtime, savepoint)

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
        return perform_all(self, objects, user, data, session=session)

    @classmethod
    def perform_all_of(
        cls,
        transition: Transition,
        objects: t.Iterable[t.Any] | sa.Select[t.Any],
        user: t.Any = None,
        data: t.Mapping[str, t.Any] | None = None,
        *,
        session: SessionLike | None = None,
    ) -> BulkResult:
        """:meth:`perform_all` of ``transition`` bound to the class of
        ``objects`` (the entity of a ``select()``, or the objects' class).

        :raise TypeError: no manager of that class declares ``transition``.
        """
        if isinstance(objects, sa.Select):
            model = objects.column_descriptions[0]["entity"]
        else:
            objects = list(objects)
            if not objects:
                return BulkResult([], {})
            model = type(objects[0])
        for view in bindings_of(model).values():
            if type(view).transitions().get(transition.name) is transition:
                bound = cls(transition, getattr(model, view._name))
                return bound.perform_all(objects, user, data, session=session)
        raise TypeError(f"no state manager of {getattr(model, '__name__', model)!r} declares {transition!r}")

    @classmethod
    def available_on(cls, view: StateManager, user: t.Any) -> dict[str, BoundTransition]:
        """``obj.state.transitions(user)``: the transitions ``user`` may
        perform now, in declaration order; on a class, every transition. One
        checker serves them all, so the roles loader runs once per object.

        .. versionadded:: 0.2
        """
        obj = view._obj
        if obj is None:
            return {name: getattr(view, name) for name in view._public_transitions}
        checker = Checker(current_runtime(), user)
        value = view._read(obj)
        passes = checker.passes
        available = {}
        # only those that may start from this state: most refusals cost nothing
        for name, transition in view._transitions_from.get(value, ()):
            if passes(view, transition, obj, value):
                bound: BoundTransition = getattr(view, name)
                if not transition.cascade or bound.plan_with(checker).ok:
                    available[name] = bound
        return available

    def __repr__(self) -> str:
        return f"<BoundTransition {self.transition.name} of {self.manager!r}>"


# The declaring layer binds transitions through this class without importing
# the performing layer (which builds on it).
Transition.bound_class = BoundTransition
