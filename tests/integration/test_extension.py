from __future__ import annotations

import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from api_app import ALICE, CAROL, Project, Session, db
from apps import dispose
from flask import Flask

from flask_statemgr import StateMgr


def make_app(database_url: str, **config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=database_url, SECRET_KEY="x", **config)
    db.init_app(app)
    return app


def test_app_factory_and_several_apps(database_url: str, tmp_path: Path) -> None:
    statemgr = StateMgr(db=db)
    statemgr.expose(Project)
    one = make_app(database_url)
    two = make_app(database_url, STATEMGR_URL_PREFIX="/state", STATEMGR_STORE="memory")
    statemgr.init_app(one)
    statemgr.init_app(two)
    assert one.extensions["statemgr"] is statemgr is two.extensions["statemgr"]
    assert one.test_client().get("/_statemgr/schema").status_code == 200
    assert two.test_client().get("/state/schema").status_code == 200
    assert two.test_client().get("/_statemgr/schema").status_code == 404
    with one.app_context():
        one_store = statemgr.store
    with two.app_context():
        two_store = statemgr.store
    assert one_store is not two_store
    assert one.config["STATEMGR_STORE_MAX_SIZE"] == 16 * 1024 * 1024
    for app in (one, two):
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


def test_init_app_before_db_is_a_clear_error() -> None:
    from flask_sqlalchemy import SQLAlchemy

    app = Flask(__name__)
    with pytest.raises(RuntimeError, match="db.init_app"):
        StateMgr(app, db=SQLAlchemy())


def test_init_app_twice_on_one_app_is_a_clear_error() -> None:
    app = make_app("sqlite://")
    statemgr = StateMgr(app, db=db)
    for again in (lambda: statemgr.init_app(app), lambda: StateMgr(app, db=db)):
        with pytest.raises(RuntimeError, match="already been registered on this Flask app"):
            again()
    assert app.extensions["statemgr"] is statemgr
    with app.app_context():
        db.engine.dispose()


def test_user_and_roles_loaders(api: Flask) -> None:
    statemgr: StateMgr = api.statemgr  # type: ignore[attr-defined]
    calls: list[tuple[int, str]] = []

    @statemgr.user_loader
    def load_user() -> t.Any:
        return CAROL

    @statemgr.roles_loader
    def roles(obj: t.Any, user: t.Any) -> set[str]:
        calls.append((obj.id, user.name))
        return {"editor"}

    body = api.test_client().get("/_statemgr/objects/project/1").get_json()
    assert body["managers"]["state"]["transitions"]["publish"]["available"] is True
    # one roles lookup per object and user, however many transitions
    assert calls == [(1, "carol")]


def test_flask_login_current_user(database_url: str) -> None:
    from flask_login import LoginManager, UserMixin, login_user

    class LoginUser(UserMixin):
        def __init__(self, user: t.Any) -> None:
            self.user = user
            self.id = user.id
            self.roles = user.roles
            self.name = user.name

    app = make_app(database_url)
    login = LoginManager(app)
    login.user_loader(lambda id: LoginUser(ALICE) if id == "1" else None)
    statemgr = StateMgr(app, db=db)
    statemgr.expose(Project)

    @app.get("/login")
    def do_login() -> str:
        login_user(LoginUser(ALICE))
        return "in"

    with app.app_context():
        db.create_all()
        db.session.add(Project(title="T", owner_id=1, _review="approved"))
        db.session.commit()
    try:
        client = app.test_client()
        anonymous = client.get("/_statemgr/objects/project/1").get_json()
        assert anonymous["managers"]["state"]["transitions"]["publish"]["status"] == 401
        client.get("/login")
        alice = client.get("/_statemgr/objects/project/1").get_json()
        assert alice["managers"]["state"]["transitions"]["publish"]["available"] is True
        done = client.post("/_statemgr/objects/project/1/state/publish", json={})
        assert done.status_code == 200
        assert done.get_json()["result"]["record"]["user_id"] == "1"
    finally:
        dispose(app, db)


def test_expose_needs_a_manager() -> None:
    with pytest.raises(TypeError, match="no state manager"):
        StateMgr().expose(ALICE.__class__)


def test_schema_etag_is_stable_across_processes(api: Flask) -> None:
    tag = api.test_client().get("/_statemgr/schema").headers["ETag"]
    script = (
        "import sys; sys.path.insert(0, 'tests');"
        "import api_app; from apps import create_app;"
        "app, _ = create_app(api_app, 'sqlite://');"
        "print(app.test_client().get('/_statemgr/schema').headers['ETag'])"
    )
    root = Path(__file__).parents[2]
    other = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert other.stdout.strip() == tag


def test_schema_changes_when_the_model_does(api: Flask) -> None:
    statemgr: StateMgr = api.statemgr  # type: ignore[attr-defined]
    with api.app_context():
        before = statemgr._schema_entry()[2]
        statemgr.expose(Session, name="talk")
        after = statemgr._schema_entry()[2]
    assert before != after
