"""A small publishing app built on flask_statemgr.

Run it with ``flask --app example_app run``. It uses SQLite in the instance
folder, or PostgreSQL when ``DATABASE_URL`` is set, and seeds demo data on
first start. ``SECRET_KEY`` comes from the environment. It speaks English and
German (``translations/``; the switch in the header).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import typing as t

import sqlalchemy as sa
from flask import Flask, has_request_context, request, session
from flask_babel import Babel
from flask_wtf import CSRFProtect

from .models import Project, Session, User, db, statemgr, utcnow

csrf = CSRFProtect()
babel = Babel()

#: the languages of the switch in the header
LANGUAGES = {"en": "English", "de": "Deutsch"}


def select_locale() -> str | None:
    """The language chosen with the switch, else the browser's best match;
    outside a request (the CLI) the default, English."""
    if not has_request_context():
        return None
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return t.cast(str, chosen)
    return request.accept_languages.best_match(list(LANGUAGES))


def database_url(app: Flask) -> str:
    """``DATABASE_URL`` (as hosting platforms spell it, ``postgres://``
    included) for psycopg 3, else a SQLite file in the instance folder."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        os.makedirs(app.instance_path, exist_ok=True)
        return f"sqlite:///{os.path.join(app.instance_path, 'example.sqlite')}"
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """The app; ``config`` overrides the defaults (tests pass their own
    database)."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("SECRET_KEY", "dev-only-secret"),
        # the default transition pages look like the rest of the app
        STATEMGR_BASE_TEMPLATE="base.html",
        # the session cookie is not sent with requests other sites start
        SESSION_COOKIE_SAMESITE="Lax",
        # each open page holds a stream, and a stream a gunicorn thread
        # (example_app/gunicorn.conf.py): both are sized together
        STATEMGR_EVENTS_STREAMS=int(os.environ.get("STATEMGR_EVENTS_STREAMS", "100")),
    )
    if config:
        app.config.update(config)
    if "SQLALCHEMY_DATABASE_URI" not in app.config:
        app.config["SQLALCHEMY_DATABASE_URI"] = database_url(app)

    db.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    statemgr.init_app(app)
    csrf.init_app(app)

    from .views import bp

    app.register_blueprint(bp)

    with app.app_context(), first_start_lock():
        db.create_all()
        if db.session.scalar(db.select(User).limit(1)) is None:
            seed()
    return app


#: the PostgreSQL advisory lock key of the first start (any constant)
_FIRST_START_LOCK = 0x57A7E


@contextlib.contextmanager
def first_start_lock() -> t.Iterator[None]:
    """Let one process at a time create the tables and seed them: gunicorn
    starts its workers together, and two seeding an empty database would
    seed it twice. On PostgreSQL a session-level advisory lock on a
    connection of its own, held across the seed's commits; SQLite's single
    writer already orders them."""
    if db.engine.dialect.name != "postgresql":
        yield
        return
    with db.engine.connect() as lock:
        lock.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _FIRST_START_LOCK})
        try:
            yield
        finally:
            lock.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _FIRST_START_LOCK})


def seed() -> None:
    """Demo users and projects in every state, reached by performing the
    transitions, so their history is real."""
    users = [
        User(name="Olivia", role="owner"),
        User(name="Eddie", role="editor"),
        User(name="Rita", role="reviewer"),
        User(name="Victor", role="viewer"),
    ]
    db.session.add_all(users)
    olivia, eddie, rita = users[:3]

    def project(title: str, summary: str, *sessions: str) -> Project:
        p = Project(title=title, summary=summary, owner=olivia)
        p.sessions = [Session(title=s) for s in sessions]
        db.session.add(p)
        return p

    project("Spring catalogue", "New titles for the spring season.", "Opening keynote", "Photo walk")
    report = project("Annual report 2025", "Results and outlook.", "Results", "Outlook")
    notes = project("Field notes", "Dispatches from the road.", "Day one", "Day two")
    newsletter = project("Old newsletter", "The last issue of the old format.", "Letters")
    project("Untitled idea", "")
    db.session.flush()

    yesterday = utcnow() - datetime.timedelta(days=1)
    for p in (report, notes, newsletter):
        p.review.approve(user=rita)
    for p in (notes, newsletter):
        p.state.publish(user=eddie, data={"publish_at": yesterday})
    notes.sessions[0].state.publish(
        user=eddie,
        data={
            "day": (utcnow() + datetime.timedelta(days=7)).date(),
            "room": "B-204",
            "seats": 40,
            "kind": "Talk",
            "tracks": ["Editorial"],
            "recorded": True,
            "notes": "",
        },
    )
    newsletter.state.withdraw(user=olivia, data={"reason": "Replaced by the new magazine."})
    db.session.commit()
