"""Ready-made HTML pages for performing a transition, so a simple app needs
no template of its own. Override ``statemgr/transition.html`` (or the
``statemgr/layout.html`` it extends) in the app's templates folder."""

from __future__ import annotations

import typing as t

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from .api import limit_body
from .bound import BoundTransition
from .exceptions import TransitionError, ValidationFailed
from .i18n import gettext
from .manager import StateManager, bindings_of
from .redirects import redirect_target

if t.TYPE_CHECKING:
    from .extension import StateMgr


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


def create_pages_blueprint(ext: StateMgr) -> Blueprint:
    bp = Blueprint("statemgr_pages", __name__)

    bp.url_value_preprocessor(limit_body(ext))

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
        exposed = ext.exposed.get(model)
        obj = ext.load(exposed.model, ident) if exposed is not None else None
        user = ext.current_user()
        if obj is None or not ext.can_view(obj, user) or manager not in bindings_of(type(obj)):
            abort(404)
        view: StateManager = getattr(obj, manager)
        declared = type(view)._declared_transitions.get(transition)
        if declared is None:
            abort(404)
        bound = BoundTransition(declared, view)
        plan = bound.plan(user)
        # a refused page shows no form, so it reads no body
        back = redirect_target(body=plan.error is None)
        form = None
        if declared.form is not None and plan.error is None:
            from .forms import bind_form

            form = bind_form(declared.form)
        status = 200
        reasons = list(plan.blockers)
        if request.method == "POST" and plan.error is None:
            try:
                ext.perform(bound, request.form, confirm=True)
            except ValidationFailed as e:
                status = e.http_status
                if form is not None:
                    for name, messages in e.errors.items():
                        field = getattr(form, name, None)
                        if field is not None:
                            field.errors = list(messages)
            except TransitionError as e:
                status = e.http_status
                reasons = e.reasons
            else:
                flash(gettext("%(transition)s: done", transition=bound.title or bound.name), "success")
                return redirect(back)
        elif plan.error is not None:
            status = plan.error.http_status
            if request.method == "POST":
                # refused before the body is read: its data is not known
                bound._refused(plan.error, user, None)
        return (
            render_template(
                "statemgr/transition.html",
                obj=obj,
                transition=bound,
                form=form,
                reasons=reasons,
                plan=plan,
                next=back,
                action=url_for("statemgr_pages.transition_page", model=model, ident=ident, manager=manager, transition=transition),
            ),
            status,
        )

    return bp
