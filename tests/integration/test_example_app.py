"""The example app without a browser: its factory and databases, the demo
data, the template helpers it uses, and the guarded classic form."""

from __future__ import annotations

import http.client
import multiprocessing
import os
import re
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from reliability_app import free_port

from example_app import create_app, database_url
from example_app.models import Project, User, db
from flask_statemgr import query_history
from flask_statemgr.extension import statemgr_script

SEEDED = {
    "Spring catalogue": ("DRAFT", "PENDING"),
    "Annual report 2025": ("DRAFT", "APPROVED"),
    "Field notes": ("LIVE", "APPROVED"),
    "Old newsletter": ("WITHDRAWN", "APPROVED"),
    "Untitled idea": ("DRAFT", "PENDING"),
}


def dispose(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


def sign_in(client: FlaskClient, name: str | None) -> None:
    with client.application.app_context():
        id = db.session.scalars(db.select(User.id).filter_by(name=name)).first()
    with client.session_transaction() as session:
        session["user_id"] = id


def project_id(app: Flask, title: str) -> int:
    with app.app_context():
        return int(db.session.scalars(db.select(Project.id).filter_by(title=title)).one())


def test_database_url_reads_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = Flask("example_app", instance_path=str(tmp_path / "instance"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert database_url(app) == f"sqlite:///{tmp_path / 'instance' / 'example.sqlite'}"
    assert (tmp_path / "instance").is_dir()
    # as hosting platforms spell it, for psycopg 3
    for given in ("postgres://u@db/app", "postgresql://u@db/app", "postgresql+psycopg://u@db/app"):
        monkeypatch.setenv("DATABASE_URL", given)
        assert database_url(app) == "postgresql+psycopg://u@db/app"


def test_factory_on_database_url_seeds_once(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # a PostgreSQL URL in the spelling hosting platforms use
    monkeypatch.setenv("DATABASE_URL", database_url.replace("postgresql+psycopg://", "postgres://"))
    first = create_app()
    second = create_app()
    try:
        with second.app_context():
            assert db.engine.url.render_as_string(hide_password=False) == database_url
            users = db.session.scalars(db.select(User).order_by(User.id)).all()
            assert [(u.name, u.role) for u in users] == [
                ("Olivia", "owner"),
                ("Eddie", "editor"),
                ("Rita", "reviewer"),
                ("Victor", "viewer"),
            ]
            projects = db.session.scalars(db.select(Project)).all()
            assert {p.title: (p.state.current.name, p.review.current.name) for p in projects} == SEEDED
            # reached by performing transitions, so the history is real
            history = query_history(db.session)
            assert [(r.model, r.transition) for r in history].count(("Project", "publish")) == 2
            assert len(history) == 7
            session = next(p for p in projects if p.title == "Field notes").sessions[0]
            assert (session.state.current.name, session.room) == ("PUBLISHED", "B-204")
    finally:
        with second.app_context():
            db.drop_all()
        dispose(first)
        dispose(second)


def _start(url: str, ready: t.Any) -> None:
    """A worker process starting the app, as gunicorn starts several."""
    os.environ["DATABASE_URL"] = url
    ready.wait()
    dispose(create_app())


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_workers_starting_together_seed_once(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    context = multiprocessing.get_context("fork")
    ready = context.Barrier(3)
    workers = [context.Process(target=_start, args=(database_url, ready)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    monkeypatch.setenv("DATABASE_URL", database_url)
    app = create_app()
    try:
        assert [w.exitcode for w in workers] == [0, 0, 0]
        with app.app_context():
            names = db.session.scalars(db.select(User.name)).all()
            assert sorted(names) == ["Eddie", "Olivia", "Rita", "Victor"]
            assert len(db.session.scalars(db.select(Project.id)).all()) == len(SEEDED)
    finally:
        with app.app_context():
            db.drop_all()
        dispose(app)


def test_script_tag(example: Flask) -> None:
    with example.test_request_context():
        # nobody is signed in: what they cannot do is hidden by default
        assert statemgr_script() == (
            '<script type="module" src="/_statemgr/static/statemgr.js"'
            ' data-prefix="/_statemgr" data-autostart data-hide-unavailable></script>'
        )
        assert "data-hide-unavailable" not in statemgr_script(hide_unavailable=False)
        assert statemgr_script('r"1', hide_unavailable=True, poll_interval=2000, autostart=False) == (
            '<script type="module" src="/_statemgr/static/statemgr.js" data-prefix="/_statemgr"'
            ' data-hide-unavailable data-poll-interval="2000" nonce="r&#34;1"></script>'
        )


def test_pages_carry_the_client_and_its_csrf_token(example: Flask) -> None:
    client = example.test_client()
    sign_in(client, "Rita")
    page = client.get("/").get_data(as_text=True)
    assert '<script type="module" src="/_statemgr/static/statemgr.js"' in page
    # signed in, the unavailable transitions show with their reasons
    assert " data-hide-unavailable" not in page
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert match
    spring = project_id(example, "Spring catalogue")
    url = f"/_statemgr/objects/project/{spring}/review/approve"
    refused = client.post(url, json={})
    assert refused.status_code == 400
    assert refused.content_type == "application/problem+json"
    done = client.post(url, json={}, headers={"X-CSRFToken": match[1]})
    assert done.status_code == 200
    assert done.json is not None and done.json["managers"]["review"]["current"] == "APPROVED"


def test_classic_form_is_guarded(example: Flask) -> None:
    client = example.test_client()
    live, draft = project_id(example, "Field notes"), project_id(example, "Spring catalogue")
    assert client.get(f"/projects/{live}/withdraw").status_code == 401
    sign_in(client, "Victor")
    assert client.get(f"/projects/{live}/withdraw").status_code == 403
    sign_in(client, "Eddie")
    assert client.get(f"/projects/{draft}/withdraw").status_code == 409
    assert client.get(f"/projects/{live}/withdraw").status_code == 200
    example.config["WTF_CSRF_ENABLED"] = False
    short = client.post(f"/projects/{live}/withdraw", data={"reason": "Too short"})
    assert short.status_code == 422
    assert "Field must be between 10 and 500 characters long." in short.get_data(as_text=True)
    done = client.post(f"/projects/{live}/withdraw", data={"reason": "Superseded by a new edition."})
    assert done.status_code == 302
    with example.app_context():
        project = db.session.get(Project, live)
        assert project is not None
        assert (project.state.current.name, project.withdraw_reason) == (
            "WITHDRAWN",
            "Superseded by a new edition.",
        )


def test_without_javascript_buttons_open_the_default_pages(example: Flask) -> None:
    client = example.test_client()
    sign_in(client, "Olivia")
    report = project_id(example, "Annual report 2025")
    page = client.get(f"/projects/{report}").get_data(as_text=True)
    link = f"/_statemgr/pages/project/{report}/state/publish?next=/projects/{report}"
    assert f'href="{link}"' in page
    form = client.get(link).get_data(as_text=True)
    # in the app's own layout, with the transition's form
    assert "Pressroom" in form and 'name="publish_at"' in form


@pytest.mark.slow
def test_served_by_its_gunicorn_config_it_streams_events(tmp_path: t.Any) -> None:
    """The example app's gunicorn settings give threaded workers, which
    hold event streams (a sync worker would be refused one)."""
    port = free_port()
    root = Path(__file__).parents[2]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'example.sqlite'}",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(root / "example_app/gunicorn.conf.py"),
            "example_app:create_app()",
        ],
        cwd=root,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request("GET", "/_statemgr/events/stream")
                response = connection.getresponse()
                break
            except ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.1)
        assert response.status == 200
        assert response.getheader("Content-Type").startswith("text/event-stream")
        assert response.readline().startswith(b"retry: ")
        connection.close()
    finally:
        server.terminate()
        server.wait(30)
