"""Ready-made HTML pages for performing a transition, so a simple app needs
no template of its own. Override ``statemgr/transition.html`` (or the
``statemgr/layout.html`` it extends) in the app's templates folder."""

from __future__ import annotations

import typing as t

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from .api import current_statemgr, limit_body
from .bound import BoundTransition
from .exceptions import TransitionError, ValidationFailed
from .forms import bind_form
from .i18n import gettext
from .manager import StateManager, bindings_of
from .problems import ResourceNotFound
from .redirects import redirect_target

if t.TYPE_CHECKING:
    from .extension import StateMgr
    from .results import Plan, Reason


def transition_choices(ext: StateMgr, obj: t.Any) -> list[dict[str, t.Any]]:
    """Every transition of ``obj`` for the current user: manager, bound
    transition, whether available, and why not. Used by the macros."""
    user = ext.current_user()
    choices = []
    for attr in bindings_of(type(obj)):
        view: StateManager = getattr(obj, attr)
        for transition in type(view)._public_transitions.values():
            bound = BoundTransition(transition, view)
            availability = bound.check(user)
            choices.append(
                {
                    "manager": attr,
                    "transition": bound,
                    "available": availability.ok,
                    "reasons": availability.reasons,
                }
            )
    return choices


#: sent with every page of the blueprint unless the app set them: no MIME
#: sniffing, no full URL (object ids, ``next``) in the Referer of a link that
#: leaves the site, and no framing, which would let another site clickjack
#: the page's button (``X-Frame-Options`` for browsers without CSP 2)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


#: the default pages performing a transition, for every app
bp: Blueprint = Blueprint("statemgr_pages", __name__)
bp.url_value_preprocessor(limit_body)


@bp.after_request
def security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if "frame-ancestors" not in response.headers.get("Content-Security-Policy", ""):
        # a second policy adds to the app's own: a browser enforces both
        response.headers.add("Content-Security-Policy", "frame-ancestors 'none'")
    return response


@bp.route("/<model>/<ident>/<manager>/<transition>", methods=["GET", "POST"])
def transition_page(model: str, ident: str, manager: str, transition: str) -> t.Any:
    ext = current_statemgr()
    user = ext.current_user()
    try:
        bound = ext.resolve(model, ident, manager, transition, user)
    except ResourceNotFound:
        abort(404)
    plan = bound.plan(user)
    # a refused page shows no form, so it reads no body
    back = redirect_target(body=plan.error is None)
    form = None
    if bound.transition.form is not None and plan.error is None:
        form = bind_form(bound.transition.form)
    status = plan.error.http_status if plan.error is not None else 200
    reasons = list(plan.blockers)
    if request.method == "POST":
        refused = _submit(ext, bound, plan, form)
        if refused is None:
            flash(gettext("%(transition)s: done", transition=bound.title or bound.name), "success")
            return redirect(back)
        status, reasons = refused
    return (
        render_template(
            "statemgr/transition.html",
            obj=bound.obj,
            transition=bound,
            form=form,
            reasons=reasons,
            plan=plan,
            next=back,
            action=url_for(
                "statemgr_pages.transition_page", model=model, ident=ident, manager=manager, transition=transition
            ),
        ),
        status,
    )


def _submit(ext: StateMgr, bound: BoundTransition, plan: Plan, form: t.Any) -> tuple[int, list[Reason]] | None:
    """Perform a submitted page: ``None`` when done, else the status and
    the reasons to show (the field errors are put on ``form``)."""
    try:
        # a refused plan raises before the body is read: its data is not known
        ext.perform(bound, request.form if plan.error is None else None, confirm=True, plan=plan)
    except ValidationFailed as e:
        if form is not None:
            _show_errors(form, e.errors)
        return e.http_status, list(plan.blockers)
    except TransitionError as e:
        # a refused plan's error names its first blocker only
        return e.http_status, list(plan.blockers) if e is plan.error else e.reasons
    return None


def _show_errors(form: t.Any, errors: t.Mapping[str, t.Sequence[str]]) -> None:
    """Put a refused submission's messages on the form's fields, where the
    template shows them."""
    for name, messages in errors.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = list(messages)
