"""Pages: the project list and detail, a classic guarded withdraw form, a
new-project form, and the login switcher."""

from __future__ import annotations

import dataclasses
import secrets
import typing as t

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale, gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.exceptions import HTTPException, ServiceUnavailable
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from flask_statemgr import StoreUnavailable, TransitionError, TransitionRecord, query_history
from flask_statemgr.redirects import redirect_target
from flask_statemgr.storable import storable

from . import LANGUAGES
from .models import Project, Session, User, can_view_project, can_view_session, db, statemgr

bp = Blueprint("main", __name__)


class NewProjectForm(FlaskForm):
    title = StringField(_l("Title"), validators=[storable, DataRequired(), Length(max=200)])
    summary = TextAreaField(_l("Summary"), validators=[storable, Length(max=2000)])


@bp.before_app_request
def load_user() -> None:
    user_id = session.get("user_id")
    g.user = db.session.get(User, user_id) if user_id is not None else None


#: what every HTML page may load: its own files, and scripts only with the
#: page's nonce (statemgr_script(nonce=...) puts it on the client's tag)
CSP = (
    "default-src 'self'; script-src 'nonce-{nonce}'; img-src 'self' data:; object-src 'none';"
    " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def csp_nonce() -> str:
    """This request's CSP nonce."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return t.cast(str, g.csp_nonce)


@bp.after_app_request
def content_security_policy(response: Response) -> Response:
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = CSP.format(nonce=csp_nonce())
    return response


@bp.app_context_processor
def template_globals() -> dict[str, t.Any]:
    unavailable = g.get("unavailable", False)
    return {
        # the unavailable page is rendered without asking the database
        "users": [] if unavailable else db.session.scalars(db.select(User).order_by(User.id)).all(),
        "current_user": None if unavailable else g.get("user"),
        "languages": LANGUAGES,
        "locale": str(get_locale()),
        "csp_nonce": csp_nonce,
    }


@bp.app_errorhandler(HTTPException)
def error_page(error: HTTPException) -> t.Any:
    return render_template("error.html", error=error), error.code or 500


@bp.app_errorhandler(sa.exc.OperationalError)
@bp.app_errorhandler(sa.exc.InterfaceError)
@bp.app_errorhandler(StoreUnavailable)
def unavailable_page(error: Exception) -> t.Any:
    """The database or the payload store cannot be reached: a 503 page that
    needs neither, and the next request tries again."""
    db.session.rollback()
    g.unavailable = True
    what = "payload store" if isinstance(error, StoreUnavailable) else "database"
    page = ServiceUnavailable(f"The {what} is unavailable; try again in a moment.")
    return render_template("error.html", error=page), 503, {"Retry-After": "5"}


@bp.get("/")
def index() -> str:
    return _index(NewProjectForm())


def _index(form: NewProjectForm) -> str:
    query = db.select(Project).order_by(Project.id)
    if g.user is None:
        query = query.where(Project.state.LIVE)
    else:
        query = query.where(~Project.state.DELETED)
    projects = db.session.scalars(query).all()
    return render_template("index.html", projects=projects, form=form)


@dataclasses.dataclass
class HistoryEntry:
    """A history record in the words of the page: the titles of its
    transition and states, as the buttons show them."""

    record: TransitionRecord
    action: str
    source: str
    target: str

    @classmethod
    def of(cls, record: TransitionRecord, obj: Project | Session) -> HistoryEntry:
        manager = type(getattr(type(obj), record.manager))
        transition = manager.transitions().get(record.transition)

        def title(name: str) -> str:
            # a record may name a state that was dropped since
            state = getattr(manager, name, None)
            return str(state.title) if state is not None else name

        return cls(
            record,
            str(transition.title) if transition is not None else record.transition,
            title(record.source),
            title(record.target),
        )


@bp.get("/projects/<int:id>")
def project(id: int) -> str:
    # the id may be too large for the column: load() answers None for it
    obj = statemgr.load(Project, id)
    if obj is None or not can_view_project(obj, g.user):
        abort(404)
    # who did what is for signed-in users, as in the JSON API
    history = None
    if statemgr.can_view_history(obj, g.user):
        # the project's records and its sessions' (a cascade shows as both)
        entries = [HistoryEntry.of(r, obj) for r in query_history(db.session, model=Project, object_id=obj.id)]
        for child in obj.sessions:
            entries += [HistoryEntry.of(r, child) for r in query_history(db.session, model=Session, object_id=child.id)]
        history = sorted(entries, key=lambda entry: entry.record.id)
    # the sessions this user may open through the API too
    visible = [child for child in obj.sessions if can_view_session(child, g.user)]
    titles = {str(child.id): child.title for child in obj.sessions}
    names = {str(u.id): u.name for u in db.session.scalars(db.select(User))}
    return render_template("project.html", project=obj, history=history, names=names, sessions=visible, titles=titles)


@bp.post("/projects")
def create_project() -> t.Any:
    if g.user is None or g.user.role not in ("owner", "editor"):
        abort(403)
    form = NewProjectForm()
    if not form.validate_on_submit():
        # the errors are shown at their fields; the CSRF token's has none
        for message in form.errors.get("csrf_token", []):
            flash(message, "error")
        return _index(form), 422
    obj = Project(title=form.title.data, summary=form.summary.data or "", owner=g.user)
    db.session.add(obj)
    db.session.commit()
    return redirect(url_for("main.project", id=obj.id))


@bp.route("/projects/<int:id>/withdraw", methods=["GET", "POST"])
@statemgr.guard(Project.state.withdraw)
def withdraw(obj: Project, form: t.Any) -> t.Any:
    """The same transition as a classic server-rendered form: the guard has
    already answered 404/401/403/409."""
    status = 200
    if form.validate_on_submit():
        try:
            statemgr.perform(obj.state.withdraw, {"reason": form.reason.data})
        except TransitionError as e:
            status = e.http_status
            for reason in e.reasons:
                flash(reason.message, "error")
        else:
            flash(gettext("“%(project)s” was withdrawn.", project=obj), "success")
            return redirect(url_for("main.project", id=obj.id))
    elif form.errors:
        status = 422
    return render_template("withdraw.html", project=obj, form=form), status


@bp.post("/login")
def login() -> t.Any:
    user_id = request.form.get("user_id", "")
    if not user_id:
        session.pop("user_id", None)
    else:
        # load() refuses what cannot be a key: "²", 5,000 digits, 2**40
        user = statemgr.load(User, user_id)
        if user is None:
            abort(400, description="There is no such user.")
        session["user_id"] = user.id
    return redirect(redirect_target(url_for("main.index")))


@bp.post("/language")
def language() -> t.Any:
    """The language switch in the header."""
    lang = request.form.get("lang", "")
    if lang in LANGUAGES:
        session["lang"] = lang
    # back to the page the switcher was used on, if it is on this site
    return redirect(redirect_target(url_for("main.index")))
