from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import typing as t
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import orm

POSTGRES_URL = os.environ.get("STATEMGR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("STATEMGR_TEST_REDIS", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


#: how to point the suite at each service, for the closing summary
SERVICE_HINTS = {
    "PostgreSQL": f"STATEMGR_TEST_POSTGRES (now {POSTGRES_URL})",
    "Redis": f"STATEMGR_TEST_REDIS (now {REDIS_URL})",
    "Redis (client library)": "pip install -e '.[test]'",
    "Chromium": "apt-get install chromium (/usr/bin/chromium)",
}
_MISSING_SERVICES: set[str] = set()


def service_missing(what: str, error: Exception) -> t.NoReturn:
    """Skip locally when a service is down; in CI a missing service fails."""
    message = f"{what} is not reachable: {error}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    _MISSING_SERVICES.add(what)
    pytest.skip(message)


def pytest_terminal_summary(terminalreporter: t.Any) -> None:
    """Say which services were missing, so skips behind a green summary are
    not mistaken for a full run."""
    if not _MISSING_SERVICES:
        return
    skipped = len(terminalreporter.stats.get("skipped", []))
    hints = "; ".join(f"{what}: {SERVICE_HINTS.get(what, '?')}" for what in sorted(_MISSING_SERVICES))
    terminalreporter.write_line(
        f"NOT A FULL RUN: {skipped} tests skipped because a service was missing ({hints}). "
        "Start them, or set CI=true to make a missing service fail.",
        yellow=True,
        bold=True,
    )


@pytest.fixture(scope="session")
def postgres_url() -> t.Iterator[str]:
    """A URL whose connections use a schema private to this test process.

    Several pytest processes may share the ``test`` database (developers and
    helpers running at once); a private schema keeps their tables apart.
    """
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(POSTGRES_URL)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except Exception as e:  # noqa: BLE001 - any connection error means "down"
        engine.dispose()
        service_missing("PostgreSQL", e)
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        import redis
    except ImportError as e:
        service_missing("Redis (client library)", e)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as e:  # noqa: BLE001
        service_missing("Redis", e)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: t.Any) -> str:
    """Every database-backed test runs on SQLite (a file) and PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite'}"
    return t.cast(str, request.getfixturevalue("postgres_url"))


@pytest.fixture
def core_engine(database_url: str) -> t.Iterator[sa.Engine]:
    """An engine on each database with the tables of the core's models
    (tests/core_models.py), dropped after."""
    from apps import make_engine
    from core_models import Base

    engine = make_engine(database_url)
    Base.metadata.create_all(engine)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture
def chain_engine(database_url: str) -> t.Iterator[sa.Engine]:
    """An engine on each database with the tables of the ``requires`` and
    ``cascade`` models (tests/chain_models.py), dropped after."""
    from chain_models import create_database, drop_database

    engine = create_database(database_url)
    yield engine
    drop_database(engine)


@pytest.fixture
def core_db(core_engine: sa.Engine) -> t.Iterator[orm.Session]:
    """A session on :func:`core_engine`."""
    with orm.Session(core_engine) as session:
        yield session


@pytest.fixture
def chain_db(chain_engine: sa.Engine) -> t.Iterator[orm.Session]:
    """A session on :func:`chain_engine`."""
    with orm.Session(chain_engine) as session:
        yield session


@pytest.fixture
def make_app() -> t.Iterator[t.Callable[..., t.Any]]:
    """``make_app(models, database_url, **config)``: the app of a test app
    module (tests/apps.py) with its tables created by the first app made of
    that module, and the extension as ``app.statemgr``. After the test every
    app made gives its connections back and the tables are dropped."""
    from apps import create_app, dispose

    made: list[tuple[t.Any, t.Any, bool]] = []

    def make(models: t.Any, database_url: str, **config: t.Any) -> t.Any:
        app, statemgr = create_app(models, database_url, **config)
        app.statemgr = statemgr
        first = all(db is not models.db for _, db, _ in made)
        if first:
            with app.app_context():
                models.db.create_all()
        made.append((app, models.db, first))
        return app

    yield make
    # every app's connections go back first: PostgreSQL's DROP waits for them
    for app, db, first in made[::-1]:
        dispose(app, db, drop=first)


@pytest.fixture
def api(make_app: t.Callable[..., t.Any], database_url: str) -> t.Any:
    """The extension's test app (tests/api_app.py) on each database, with
    tables created and two projects: 1 (alice's, approved review, titled)
    with two sessions, and 2 (bob's, private, untitled)."""
    import api_app
    from api_app import Project, Session, db

    app = make_app(api_app, database_url)
    with app.app_context():
        first = Project(title="First", owner_id=1, _review="approved")
        first.sessions = [Session(), Session()]
        db.session.add_all([first, Project(title="", owner_id=2, private=True)])
        db.session.commit()
        db.session.remove()
    return app


@pytest.fixture
def reliability(make_app: t.Callable[..., t.Any], database_url: str) -> t.Callable[..., t.Any]:
    """A factory for the reliability app (tests/reliability_app.py) on each
    database: ``reliability(**config)`` returns an app whose tables exist
    (created once)."""
    import reliability_app

    return functools.partial(make_app, reliability_app, database_url)


@pytest.fixture
def secured(reliability: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """``secured(**config)``: the reliability app seeded once for the
    security tests. Alice (1), Bob (2) and Carol (3) each own a folder and
    author two documents: folder 1 (alice, public) holds documents 1 and 2
    (alice's); folder 2 (bob, private) holds 3 (bob's) and 4 (carol's);
    folder 3 (carol, private) holds 5 (carol's) and 6 (bob's)."""
    from reliability_app import Population, db, seed

    seeded = False

    def make(**config: t.Any) -> t.Any:
        nonlocal seeded
        app = reliability(**config)
        if not seeded:
            with app.app_context():
                seed(
                    Population([1, 2, 3], [(0, 1), (0, 1), (1, 2), (1, 3), (2, 3), (2, 2)]),
                    private={1, 2},
                )
                db.session.remove()
            seeded = True
        return app

    return make


@pytest.fixture
def snapshot() -> t.Callable[[t.Any], dict[str, t.Any]]:
    """``snapshot(app)``: every column of the reliability app's folders and
    documents, and how many history records and blobs there are, so a test
    can show that a refused request wrote nothing."""
    from reliability_app import Document, Folder, db

    from flask_statemgr.tables import blob_table, history_table

    def take(app: t.Any) -> dict[str, t.Any]:
        with app.app_context():
            session = db.session
            rows = {
                model.__name__: [tuple(row) for row in session.execute(sa.select(model.__table__).order_by(model.id))]
                for model in (Folder, Document)
            }
            for table in (history_table, blob_table):
                rows[table.name] = session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            db.session.remove()
        return rows

    return take


@pytest.fixture
def example(tmp_path: t.Any) -> t.Iterator[t.Any]:
    """The example app (example_app/) on a new SQLite file, seeded with its
    demo data."""
    from apps import dispose

    from example_app import create_app
    from example_app.models import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.sqlite'}", "SECRET_KEY": "t"})
    yield app
    dispose(app, db, drop=False)


@pytest.fixture
def i18n(make_app: t.Callable[..., t.Any], tmp_path: t.Any) -> t.Any:
    """The translated app (tests/i18n_app.py) on SQLite: every title, label
    and app reason a lazy string, in English and German. Article 1 is
    titled, article 2 is not (its publish precondition fails)."""
    import i18n_app
    from i18n_app import Article, db

    app = make_app(
        i18n_app,
        f"sqlite:///{tmp_path / 'i18n.sqlite'}",
        BABEL_TRANSLATION_DIRECTORIES=str(tmp_path / "translations"),
    )
    with app.app_context():
        db.session.add_all([Article(title="Spring"), Article()])
        db.session.commit()
        db.session.remove()
    return app


@pytest.fixture
def coaster_api(make_app: t.Callable[..., t.Any], database_url: str) -> t.Iterator[t.Any]:
    """The two-manager app of tests/coaster_app.py on each database, with
    post 1 (with a body) and post 2 (without), both drafts."""
    import coaster_app
    from coaster_app import ASKED, Post, db

    app = make_app(coaster_app, database_url)
    with app.app_context():
        db.session.add_all([Post(body="Hello"), Post(body="")])
        db.session.commit()
        db.session.remove()
    yield app
    ASKED.clear()


JS_TOOLS = Path(__file__).parent / "js"


@pytest.fixture(scope="session")
def ajv() -> t.Callable[[list[t.Any], list[tuple[int, t.Any]]], tuple[list[str | None], list[bool | None]]]:
    """Judge instances with ajv's ``Ajv2020`` in strict mode (and
    ajv-formats), run by Node. ``npm ci`` installs the locked versions into
    ``tests/js/node_modules`` once. Returns ``judge(schemas, cases)`` with
    ``cases`` as ``(schema index, instance)`` pairs: per schema its compile
    error or ``None``, per case whether it is valid (``None`` if its schema
    did not compile)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        service_missing("Node.js and npm", FileNotFoundError("not on PATH"))
    installed = JS_TOOLS / "node_modules" / ".package-lock.json"
    lock = JS_TOOLS / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS_TOOLS, capture_output=True, text=True)
        if done.returncode:
            service_missing("npm ci in tests/js", RuntimeError(done.stderr.strip()))

    def judge(schemas: list[t.Any], cases: list[tuple[int, t.Any]]) -> tuple[list[str | None], list[bool | None]]:
        done = subprocess.run(
            [node, str(JS_TOOLS / "validate.mjs")],
            input=json.dumps({"schemas": schemas, "cases": cases}),
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout)
        return result["errors"], result["valid"]

    return judge


@pytest.fixture
def example_everywhere(database_url: str) -> t.Iterator[t.Callable[..., t.Any]]:
    """``example_everywhere(**config)``: the example app on each database,
    seeded, with CSRF off; its tables are dropped after."""
    from apps import dispose

    from example_app import create_app
    from example_app.models import db

    apps = []

    def make(**config: t.Any) -> t.Any:
        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "t", "WTF_CSRF_ENABLED": False, **config}
        )
        apps.append(app)
        return app

    yield make
    for app in apps[::-1]:
        dispose(app, db, drop=app is apps[0])
