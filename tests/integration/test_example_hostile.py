"""The example app under attack answers a 4xx, or a 503 page when a service
is down, and never a 500: ids that cannot be keys, text no database can
store, a database that cannot be reached, a store that cannot be reached,
a corrupt blob."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_statemgr.exceptions import StoreUnavailable
from flask_statemgr.store import MemoryBackend

App = t.Callable[..., Flask]
TOO_BIG = ["²", "9" * 5000, "99999999999", "-1", "1.5", "0x1", " 1"]


def signed_in(app: Flask, name: str) -> FlaskClient:
    from example_app.models import User, db

    client = app.test_client()
    with app.app_context():
        id = db.session.scalars(db.select(User.id).filter_by(name=name)).one()
        db.session.remove()
    with client.session_transaction() as session:
        session["user_id"] = id
    return client


@pytest.mark.parametrize("user_id", TOO_BIG, ids=lambda v: v if len(v) < 20 else f"{len(v)} digits")
def test_login_as_no_user_is_400(example_everywhere: App, user_id: str) -> None:
    client = signed_in(example_everywhere(), "Olivia")
    response = client.post("/login", data={"user_id": user_id})
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert "There is no such user." in response.get_data(as_text=True)
    # still Olivia: a bad switch changes nothing
    with client.session_transaction() as session:
        assert session["user_id"] == 1
    # the empty choice signs out, a real one signs in
    assert client.post("/login", data={"user_id": ""}).status_code == 302
    assert client.post("/login", data={"user_id": "2"}).status_code == 302


@pytest.mark.parametrize("ident", ["99999999999", "9" * 30, "2147483648"])
def test_a_project_id_too_large_for_the_column_is_404(example_everywhere: App, ident: str) -> None:
    client = signed_in(example_everywhere(), "Olivia")
    response = client.get(f"/projects/{ident}")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert client.get(f"/projects/{ident}/withdraw").status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", "a\x00b"), ("summary", "fine\x00"), ("title", "")],
    ids=["NUL title", "NUL summary", "empty"],
)
def test_a_new_project_the_database_cannot_store_is_422(example_everywhere: App, field: str, value: str) -> None:
    from example_app.models import Project, db

    app = example_everywhere()
    client = signed_in(app, "Olivia")
    data = {"title": "A title", "summary": "", field: value}
    response = client.post("/projects", data=data)
    assert response.status_code == 422 and response.mimetype == "text/html"
    # the error is shown at the field it belongs to
    assert '<div class="statemgr-field statemgr-invalid">' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Project)) == 5
        db.session.remove()


def test_the_database_out_of_reach_is_a_503_page(example_everywhere: App) -> None:
    from example_app.models import db

    app = example_everywhere()
    client = signed_in(app, "Olivia")
    with app.app_context():
        engine = db.engine

    def refuse(*args: t.Any) -> None:
        raise engine.dialect.loaded_dbapi.OperationalError("the database went away")

    # every connection from now on fails to open, as when the server is gone
    engine.dispose()
    sa.event.listen(engine, "do_connect", refuse)
    try:
        for response in (client.get("/"), client.get("/projects/1"), client.post("/login", data={"user_id": "2"})):
            assert response.status_code == 503 and response.mimetype == "text/html"
            assert response.headers["Retry-After"] == "5"
            assert "The database is unavailable" in response.get_data(as_text=True)
    finally:
        sa.event.remove(engine, "do_connect", refuse)
    # back again: the next request is served as usual
    assert client.get("/").status_code == 200


class Switchable(MemoryBackend):
    """A memory store that can be taken down."""

    down = False

    def read(self, key: str, *, session: t.Any = None) -> bytes | None:
        if self.down:
            raise StoreUnavailable("The payload store is unavailable; try again later")
        return super().read(key, session=session)


def test_the_store_out_of_reach_is_a_503_page_and_a_corrupt_blob_no_error(example_everywhere: App) -> None:
    # every payload field goes to the store, the seeded ones included
    backend = Switchable()
    app = example_everywhere(STATEMGR_STORE=backend, STATEMGR_STORE_MIN_SIZE=1, STATEMGR_STORE_CACHE_SIZE=0)
    client = signed_in(app, "Olivia")
    withdrawn = "/projects/4"  # its history holds a withdraw reason
    assert client.get(withdrawn).status_code == 200
    backend.down = True
    response = client.get(withdrawn)
    assert response.status_code == 503 and "The payload store is unavailable" in response.get_data(as_text=True)
    backend.down = False
    for key, (data, at) in list(backend._blobs.items()):
        backend._blobs[key] = (data[:-1] + bytes([data[-1] ^ 1]), at)
    # the page shows the history, its payloads unread
    response = client.get(withdrawn)
    assert response.status_code == 200 and "<strong>Withdraw</strong>" in response.get_data(as_text=True)


def test_the_project_history_is_for_signed_in_users(example_everywhere: App) -> None:
    app = example_everywhere()
    # "Field notes" is live: anyone may see the project
    anonymous = app.test_client().get("/projects/3").get_data(as_text=True)
    assert "Sign in to see the history." in anonymous and "Rita: " not in anonymous
    signed_in_page = signed_in(app, "Victor").get("/projects/3").get_data(as_text=True)
    assert "Rita: <strong>Approve</strong>" in signed_in_page


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_connection_cut_by_postgresql_is_one_503_page(example_everywhere: App, database_url: str) -> None:
    from example_app.models import db

    app = example_everywhere()
    client = signed_in(app, "Olivia")
    assert client.get("/").status_code == 200
    with app.app_context():
        engine = db.engine
        db.session.remove()
    # every connection in the app's pool, held at once so that none is new
    held = [engine.connect() for _ in range(engine.pool.checkedin())]  # type: ignore[attr-defined]
    backends = [conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() for conn in held]
    for conn in held:
        conn.close()
    # cut them all, as a server restart does
    admin = sa.create_engine(database_url)
    try:
        with admin.connect() as conn:
            for backend in backends:
                assert conn.execute(sa.select(sa.func.pg_terminate_backend(backend))).scalar_one()
    finally:
        admin.dispose()
    response = client.get("/")
    assert response.status_code == 503 and "The database is unavailable" in response.get_data(as_text=True)
    assert client.get("/").status_code == 200
