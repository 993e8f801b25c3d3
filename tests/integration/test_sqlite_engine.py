"""The app's own SQLite code behaves with the extension as without it, and
savepoints still nest inside the session's transaction."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import orm

from flask_statemgr import State, StateManager, StateMgr


class NoteState(StateManager):
    NEW = State(1, "New")
    DONE = State(2, "Done")


db = SQLAlchemy()


class Note(db.Model):  # type: ignore[name-defined,misc]
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    _state: orm.Mapped[int] = NoteState.column(default=NoteState.NEW)
    state = NoteState("_state")


@pytest.fixture(params=[False, True], ids=["plain", "statemgr"])
def app(request: pytest.FixtureRequest) -> t.Iterator[Flask]:
    """An app on an in-memory SQLite database, without and with the
    extension: every test must see the same behaviour from both."""
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db.init_app(app)
    if request.param:
        StateMgr(app, db=db)
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


def test_drop_all_after_a_query(app: Flask) -> None:
    db.session.add(Note())
    db.session.commit()
    assert db.session.scalars(sa.select(Note)).all()
    db.drop_all()
    assert not sa.inspect(db.engine).has_table("note")


def test_reflection_while_the_session_holds_a_transaction(app: Flask) -> None:
    db.session.execute(sa.select(Note)).all()
    assert db.session().in_transaction()
    columns = [c["name"] for c in sa.inspect(db.engine).get_columns("note")]
    assert columns == ["id", "_state"]


def test_foreign_keys_stay_as_sqlite_has_them(app: Flask) -> None:
    assert db.session.execute(sa.text("PRAGMA foreign_keys")).scalar() == 0


def test_a_released_savepoint_rolls_back_with_its_session(app: Flask) -> None:
    with db.session.begin_nested():
        db.session.add(Note())
    db.session.rollback()
    count = db.session.scalar(sa.select(sa.func.count()).select_from(Note))
    # without the extension the driver lets the SAVEPOINT open the
    # transaction, and releasing it commits: what the extension repairs
    assert count == (0 if "statemgr" in app.extensions else 1)


def test_savepoints_can_be_left_alone() -> None:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", STATEMGR_SQLITE_SAVEPOINTS=False)
    db.init_app(app)
    StateMgr(app, db=db)
    with app.app_context():
        db.create_all()
        with db.session.begin_nested():
            db.session.add(Note())
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Note)) == 1
        db.session.remove()
        db.engine.dispose()
