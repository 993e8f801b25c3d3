"""The JSON API blueprint (DESIGN §6): schema, object state, perform,
history and events, with ``application/problem+json`` errors."""

from __future__ import annotations

import base64
import datetime
import decimal
import io
import json
import typing as t
import uuid
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request
from sqlalchemy import exc
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from .bound import BoundTransition
from .checks import Checker, refused_by_state, state_conflict
from .events import START, Page, event_json, latest_cursor, parse_cursor, read_rows, transaction_cursor
from .exceptions import SerializationError, StateMgrError, TransitionError
from .history import TransitionRecord, query_history
from .i18n import N_, current_locale, gettext, json_default, memo, text
from .identity import is_anonymous, object_identity
from .manager import StateManager, bindings_of
from .problems import error_problem, http_problem, problem, transition_problem
from .stream import event_stream

if t.TYPE_CHECKING:
    from .extension import Exposed, StateMgr
    from .results import Reason
    from .transitions import Transition

#: the largest ``after`` cursor and ``limit`` the events view accepts, and
#: the largest integer key: a signed 64-bit integer (PostgreSQL's bigint)
MAX_INT = 2**63 - 1
_TRUE = {"1", "true", "yes", "on"}


def _int_limit(column: sa.Column[t.Any], dialect: str | None) -> int:
    """The largest value an integer ``column`` holds: every SQLite integer
    has 64 bits; elsewhere ``Integer`` has 32 and ``SmallInteger`` 16."""
    if dialect in (None, "sqlite") or isinstance(column.type, sa.BigInteger):
        return MAX_INT
    return 2**15 - 1 if isinstance(column.type, sa.SmallInteger) else 2**31 - 1


def coerce_identity(model: type, ident: t.Any, dialect: str | None = None) -> t.Any:
    """Turn a URL segment into ``model``'s primary key, or ``None`` when it
    cannot be one (so the caller answers 404 rather than a database error).

    :param dialect: the name of the database's dialect, whose column types
        bound the integers; without it, any 64-bit integer passes.
    """
    if ident is None:
        return None
    columns: t.Sequence[sa.Column[t.Any]] = sa.inspect(model).primary_key
    parts = str(ident).split(",") if len(columns) > 1 else [str(ident)]
    if len(parts) != len(columns):
        return None
    values: list[t.Any] = []
    for column, part in zip(columns, parts):
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            python_type = str
        if python_type is int:
            digits = part.removeprefix("-")
            # a bound on the length first: int() refuses over 4300 digits
            if (
                not digits.isdigit()
                or not digits.isascii()
                or len(digits) > 19
                or int(digits) > _int_limit(column, dialect)
            ):
                return None
            values.append(int(part))
        elif python_type is uuid.UUID:
            try:
                values.append(uuid.UUID(part))
            except ValueError:
                return None
        else:
            # PostgreSQL refuses NUL in any string, even to compare
            if len(part) > 255 or "\x00" in part:
                return None
            values.append(part)
    return values[0] if len(values) == 1 else tuple(values)


def jsonable(value: t.Any) -> t.Any:
    """Payload values as JSON: ISO dates, exact decimals as strings, bytes as
    base64, sets and tuples as lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=repr)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def record_json(record: TransitionRecord) -> dict[str, t.Any]:
    data = record.to_dict()
    data["payload"] = jsonable(record.payload)
    return data


def json_response(body: t.Any, status: int = 200) -> Response:
    return Response(json.dumps(body, default=json_default), status=status, mimetype="application/json")


def object_json(ext: StateMgr, exposed: Exposed, obj: t.Any, user: t.Any) -> dict[str, t.Any]:
    """An object's states and, for ``user``, every transition with whether it
    is available, why not, and what it would change.

    The parts that follow from declarations and the state value alone (a
    manager's states without conditional ones, a transition refused by the
    state, an available one without a cascade) are made once per app
    context and locale (:func:`~flask_statemgr.i18n.memo`) and shared by
    the answers: a listing repeats them on every object."""
    checker = Checker(ext, user)
    shared = memo()
    managers = {}
    for attr in bindings_of(type(obj)):
        view: StateManager = getattr(obj, attr)
        manager = type(view)
        value = view._read(obj)
        key = ("transitions", manager, attr, value)
        template = shared.get(key)
        if template is None:
            template = shared[key] = _transitions_template(checker, view, value)
        refused_by_state, to_check = template
        # in declaration order: the copy keeps the keys' order, the checked
        # ones fill their places
        transitions = refused_by_state.copy()
        entry: dict[str, t.Any] | None
        for name, transition in to_check:
            if transition.cascade:
                plan = BoundTransition(transition, view).plan_with(checker)
                entry = _transition_json(transition, plan.error, plan.blockers)
                if plan.error is None:
                    entry["changes"] = plan.summary()
            elif checker.passes(view, transition, obj, value):
                entry = shared.get(("available", transition))
                if entry is None:
                    entry = shared["available", transition] = _transition_json(transition, None, [])
            else:
                error = checker.failure(view, transition, obj, value)
                entry = _transition_json(transition, error, error.reasons if error else [])
            transitions[name] = entry
        states: dict[str, t.Any] | None
        if manager._conditionals:
            states = _states_json(view, obj)
        else:
            key = ("states", manager, attr, value)
            states = shared.get(key)
            if states is None:
                states = shared[key] = _states_json(view, obj)
        managers[attr] = {**states, "transitions": transitions}
    return {
        "model": exposed.name,
        "id": object_identity(obj),
        "label": str(obj),
        "managers": managers,
        "cursor": transaction_cursor(ext.db.session) if ext.db is not None else START,
    }


def _transitions_template(
    checker: Checker, view: StateManager, value: t.Any
) -> tuple[dict[str, t.Any], list[tuple[str, Transition]]]:
    """For a manager's value: the entries of the transitions its state alone
    refuses (a plain one that does not start there), with a place for each
    of the others, and those others, which depend on the object and the
    user."""
    entries: dict[str, t.Any] = {}
    to_check = []
    for name, transition in type(view)._public_transitions.items():
        if not transition.cascade and refused_by_state(transition, value):
            error = state_conflict(checker.reasons(), view, transition, value)
            entries[name] = _transition_json(transition, error, error.reasons)
        else:
            entries[name] = None
            to_check.append((name, transition))
    return entries, to_check


def _transition_json(transition: Transition, error: TransitionError | None, reasons: list[Reason]) -> dict[str, t.Any]:
    return {
        "title": text(transition.title),
        "available": error is None,
        "status": error.http_status if error is not None else 200,
        "reasons": [r.to_dict() for r in reasons],
        "form": transition.form is not None,
    }


def _states_json(view: StateManager, obj: t.Any) -> dict[str, t.Any]:
    current = view.current
    return {
        "manager": type(view).__name__,
        "value": view.value,
        "state": view._plain_state(obj).name,
        "current": current.name,
        "title": text(current.title),
        "states": {n: bool(view._test(s)) for n, s in type(view)._declared_states.items()},
    }


def request_data() -> tuple[t.Mapping[str, t.Any], bool]:
    """The submitted data and the ``confirm`` flag, from a JSON or a
    form-encoded body."""
    if request.mimetype == "application/json":
        raw = request.get_data(cache=True)
        if not raw.strip():
            return {}, False
        try:
            body = json.loads(raw, parse_constant=_refuse_constant)
        except ValueError:
            raise _BadRequest(gettext("The body is not valid JSON")) from None
        except RecursionError:
            raise _BadRequest(gettext("The JSON body nests too deeply")) from None
        if not isinstance(body, dict):
            raise _BadRequest(gettext("The JSON body must be an object"))
        confirm = body.pop("confirm", False)
        if not isinstance(confirm, (bool, str)):
            # 1, null or [true] must not pass for a confirmation, nor be
            # silently read as a refusal of one
            raise _BadRequest(gettext("confirm must be true or false"))
        return body, confirm is True or (isinstance(confirm, str) and confirm.lower() in _TRUE)
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = MultiDict(request.form)
        form.pop("csrf_token", None)
        confirm = str(form.pop("confirm", "")).lower() in _TRUE
        return form, confirm
    if not request.content_length and not request.mimetype:
        return {}, False
    raise _UnsupportedMediaType()


def body_limit() -> tuple[int, str]:
    """The most bytes a request body to the extension may hold, and the
    setting that says so: ``MAX_CONTENT_LENGTH``, else
    ``STATEMGR_STORE_MAX_SIZE``."""
    config = current_app.config
    if config.get("MAX_CONTENT_LENGTH") is not None:
        return int(config["MAX_CONTENT_LENGTH"]), "MAX_CONTENT_LENGTH"
    return int(config["STATEMGR_STORE_MAX_SIZE"]), "STATEMGR_STORE_MAX_SIZE"


def limit_body(endpoint: str | None, values: dict[str, t.Any] | None) -> None:
    """A URL value preprocessor bounding the body a blueprint's views read
    (:func:`body_limit`): a longer one is a 413 before any of it is read, or,
    sent without a length (chunked), as soon as the limit is passed. URL
    value preprocessors run before every ``before_request`` function,
    Flask-WTF's CSRF check included, which reads a form body."""
    most, _ = body_limit()
    environ = request.environ
    if request.content_length is None and "wsgi.input_terminated" in environ:
        # Werkzeug stops reading such a body at max_content_length and
        # hands on what it read as if it were all: a cut form or JSON.
        # Reading one byte more shows whether there was more.
        environ["wsgi.input"] = _CappedInput(environ["wsgi.input"], most)
        most += 1
    request.max_content_length = most


class _CappedInput(io.RawIOBase):
    """A body without a length that raises
    :exc:`~werkzeug.exceptions.RequestEntityTooLarge` once more than
    ``limit`` bytes were read from it."""

    def __init__(self, stream: t.Any, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: t.Any) -> int:
        data = self._stream.read(min(len(buffer), self._limit + 1 - self._count))
        self._count += len(data)
        if self._count > self._limit:
            raise RequestEntityTooLarge()
        buffer[: len(data)] = data
        return len(data)


def _refuse_constant(name: str) -> t.NoReturn:
    # Python's json reads NaN and Infinity, which are not JSON: stored, they
    # would make every later history answer invalid JSON.
    raise ValueError(f"{name} is not JSON")


class _BadRequest(StateMgrError):
    http_status = 400
    title = N_("Bad request")


class _UnprocessablePayload(StateMgrError):
    http_status = 422
    title = N_("Unprocessable payload")


class _UnsupportedMediaType(StateMgrError):
    http_status = 415
    title = N_("Unsupported media type")

    def __str__(self) -> str:
        return gettext("Send JSON (application/json) or a form (application/x-www-form-urlencoded)")


def current_statemgr() -> StateMgr:
    """The :class:`~flask_statemgr.StateMgr` of the current app.

    .. versionadded:: 0.1
    """
    return t.cast("StateMgr", current_app.extensions["statemgr"])


def resource_folder(name: str) -> str:
    """``templates`` or ``static``: inside the package in a built wheel, at
    the top of the source tree in a checkout or editable install."""
    here = Path(__file__).parent
    packaged = here / name
    return str(packaged if packaged.is_dir() else here.parent / name)


#: the JSON API and the extension's static files and templates; one
#: blueprint for every app, whose views read the app's extension
bp: Blueprint = Blueprint(
    "statemgr",
    __name__,
    static_folder=resource_folder("static"),
    template_folder=resource_folder("templates"),
)
bp.url_value_preprocessor(limit_body)


@bp.before_app_request
def routing_problem() -> Response | None:
    """A URL under the API's prefix that matches no route, or not with
    this method, never reaches the blueprint's error handlers: answer it
    as the API answers everything else. The pages keep HTML errors."""
    error = request.routing_exception
    if not isinstance(error, (NotFound, MethodNotAllowed)):
        return None
    prefix = current_app.config["STATEMGR_URL_PREFIX"].rstrip("/")
    path = request.path
    # with no prefix every URL would look like the API's
    if prefix and path.startswith(f"{prefix}/") and not path.startswith(f"{prefix}/pages/"):
        return http_problem(error)
    return None


@bp.get("/schema")
def schema() -> Response:
    body, tag = current_statemgr().schema_json()
    response = Response(body, mimetype="application/json")
    response.set_etag(tag)
    response.headers["Cache-Control"] = "no-cache"
    locale = current_locale()
    if locale is not None:
        # one representation per locale: a shared cache must key on
        # what selects it (README, "Translations")
        response.content_language.add(locale.replace("_", "-"))
        response.vary.add("Accept-Language")
    # RFC 9110's weak comparison for If-None-Match: W/"…" (what a
    # compressing proxy sends back), a list of tags and * all match
    response.make_conditional(request)
    return response


@bp.get("/objects/<model>/<ident>")
def get_object(model: str, ident: str) -> Response:
    ext = current_statemgr()
    user = ext.current_user()
    obj = ext.resolve_object(model, ident, user)
    return json_response(object_json(ext, ext.exposed[model], obj, user))


@bp.post("/objects/<model>/<ident>/<manager>/<transition>")
def perform(model: str, ident: str, manager: str, transition: str) -> Response:
    ext = current_statemgr()
    user = ext.current_user()
    bound = ext.resolve(model, ident, manager, transition, user)
    plan = bound.plan(user)
    if plan.error is not None:
        # the user or the state decides: refused (this raises) before the
        # body is read
        ext.perform(bound, plan=plan)
    data, confirm = request_data()
    try:
        result = ext.perform(bound, data, confirm=confirm, commit=False, plan=plan)
    except SerializationError as e:
        if bound.transition.form is not None:
            # the form's cleaned data cannot be stored: the app's bug
            raise
        # without a form the payload is the client's JSON as sent (too
        # deep, or a lone surrogate), so it is the client's to fix
        raise _UnprocessablePayload(str(e)) from e
    body = object_json(ext, ext.exposed[model], bound.obj, user)
    body["result"] = {
        "transition": transition,
        "manager": manager,
        "source": result.source.name,
        "target": result.target.name,
        "record": record_json(result.record) if result.record is not None else None,
        "steps": len(result.steps),
    }
    # answered from the objects as the transition left them, before the
    # commit expires them: no reload
    ext.commit()
    return json_response(body)


@bp.get("/objects/<model>/<ident>/history")
def history(model: str, ident: str) -> Response:
    ext = current_statemgr()
    user = ext.current_user()
    obj = ext.resolve_object(model, ident, user)
    if not ext.can_view_history(obj, user):
        raise _HistoryRefused(anonymous=is_anonymous(user))
    assert ext.db is not None
    records = query_history(ext.db.session, model=type(obj), object_id=object_identity(obj), store=ext.store)
    return json_response({"records": [record_json(r) for r in records]})


def feed(after: str, limit: int) -> Page:
    """The events after ``after`` that the current user may view."""
    ext = current_statemgr()
    assert ext.db is not None
    session = ext.db.session
    read = read_rows(session, after, limit)
    user = ext.current_user()
    objects = _exposed_objects(ext, session, {(row["model"], row["object_id"]) for row in read.rows})
    visible = {key: name for key, (name, obj) in objects.items() if ext.can_view(obj, user)}
    events = [
        event_json(row, visible[(row["model"], row["object_id"])])
        for row in read.rows
        if (row["model"], row["object_id"]) in visible
    ]
    # the cursor moves past hidden records too, without revealing them
    return Page(events, read.cursor, read.pending, read.more)


@bp.get("/events")
def events() -> Response:
    ext = current_statemgr()
    assert ext.db is not None
    after = request.args.get("after")
    limit_max = int(current_app.config["STATEMGR_EVENTS_LIMIT"])
    # both are checked even when after is absent: a bad query is refused
    # the same way whatever else it holds
    if after is not None:
        parse_cursor(after)
    try:
        limit = int(request.args.get("limit", limit_max))
    except ValueError:
        raise _BadRequest(gettext("limit must be a whole number")) from None
    if not 1 <= limit <= MAX_INT:
        raise _BadRequest(gettext("limit must be from 1 to %(max)d", max=MAX_INT))
    if after is None:
        return json_response({"events": [], "cursor": latest_cursor(ext.db.session)})
    page = feed(after, min(limit, limit_max))
    return json_response({"events": page.events, "cursor": page.cursor, "pending": page.pending})


@bp.get("/events/stream")
def events_stream() -> Response:
    ext = current_statemgr()
    assert ext.db is not None
    # a reconnecting EventSource sends the last id it saw and the URL it
    # first opened: the id is the later position
    after = request.headers.get("Last-Event-ID") or request.args.get("after")
    if after is None:
        after = latest_cursor(ext.db.session)
    else:
        parse_cursor(after)
    limit = int(current_app.config["STATEMGR_EVENTS_LIMIT"])
    return event_stream(
        ext, after, lambda cursor: feed(cursor, limit), lambda session, keys: _exposed_objects(ext, session, keys)
    )


@bp.errorhandler(TransitionError)
def on_transition_error(error: TransitionError) -> Response:
    return transition_problem(error)


@bp.errorhandler(StateMgrError)
def on_error(error: StateMgrError) -> Response:
    db = current_statemgr().db
    if db is not None:
        db.session.rollback()
    return error_problem(error)


@bp.errorhandler(HTTPException)
def on_http_error(error: HTTPException) -> Response:
    return http_problem(error)


@bp.errorhandler(RequestEntityTooLarge)
def on_too_large(error: RequestEntityTooLarge) -> Response:
    most, setting = body_limit()
    length = request.content_length
    if length is not None and length <= most:
        # a form's own limits (MAX_FORM_MEMORY_SIZE, MAX_FORM_PARTS)
        return http_problem(error)
    return problem(
        413,
        error.name,
        gettext("The body is larger than %(most)d bytes (%(setting)s)", most=most, setting=setting),
        reasons=[],
    )


@bp.errorhandler(exc.OperationalError)
@bp.errorhandler(exc.InterfaceError)
def on_database_error(error: Exception) -> Response:
    db = current_statemgr().db
    if db is not None:
        db.session.rollback()
    return problem(503, N_("Service unavailable"), gettext("The database is unavailable; try again"), reasons=[])


class _HistoryRefused(StateMgrError):
    """``can_view_history`` said no: 401 for an anonymous user, else 403."""

    def __init__(self, *, anonymous: bool) -> None:
        self.http_status = 401 if anonymous else 403
        self.title = "Unauthorized" if anonymous else "Forbidden"
        super().__init__("Sign in to read this history" if anonymous else "You may not read this history")


#: object ids per query when loading the objects that events name
_LOAD_BATCH = 500


def _exposed_objects(
    ext: StateMgr, session: t.Any, keys: t.Collection[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, t.Any]]:
    """The objects of exposed models that (model class name, object id)
    ``keys`` name, each with its model's exposed name; one query per model
    and :data:`_LOAD_BATCH` ids, however many readers asked."""
    wanted: dict[str, set[str]] = {}
    for class_name, object_id in keys:
        wanted.setdefault(class_name, set()).add(object_id)
    by_class = {e.model.__name__: e for e in ext.exposed.values()}
    found: dict[tuple[str, str], tuple[str, t.Any]] = {}
    for class_name, ids in wanted.items():
        exposed = by_class.get(class_name)
        if exposed is None:
            continue
        pk: t.Sequence[sa.Column[t.Any]] = sa.inspect(exposed.model).primary_key
        if len(pk) != 1:
            continue
        values = [k for k in (coerce_identity(exposed.model, i) for i in sorted(ids)) if k is not None]
        obj: t.Any
        for start in range(0, len(values), _LOAD_BATCH):
            batch = values[start : start + _LOAD_BATCH]
            for obj in session.scalars(sa.select(exposed.model).where(pk[0].in_(batch))):
                found[(class_name, object_identity(obj))] = (exposed.name, obj)
    return found
