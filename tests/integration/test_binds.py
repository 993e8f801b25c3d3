"""Models on a non-default Flask-SQLAlchemy bind (``__bind_key__``): their
rows stay in their database, the extension's tables live in the default
one."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from apps import dispose
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import orm

from flask_statemgr import State, StateManager, StateMgr, Transition
from flask_statemgr.tables import history_table


class ReportState(StateManager):
    OPEN = State(1, "Open")
    FILED = State(2, "Filed")
    file = Transition(OPEN, FILED, "File")


db = SQLAlchemy()


class Report(db.Model):  # type: ignore[name-defined,misc]
    __bind_key__ = "archive"
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
    broken: orm.Mapped[bool] = orm.mapped_column(default=False)
    _state: orm.Mapped[int] = ReportState.column(default=ReportState.OPEN)
    state = ReportState("_state")

    @ReportState.file.execute
    def _fail_when_broken(self, data: dict[str, t.Any]) -> None:
        if self.broken:
            raise RuntimeError("broken")


class Note(db.Model):  # type: ignore[name-defined,misc]
    id: orm.Mapped[int] = orm.mapped_column(primary_key=True)


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> t.Iterator[Flask]:
    app = Flask(__name__)
    # the bound model on each database, the history beside the app's other
    # tables in an SQLite file: one statement cannot write both
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.sqlite'}",
        SQLALCHEMY_BINDS={"archive": database_url},
    )
    db.init_app(app)
    statemgr = StateMgr(app, db=db)
    # no users in this app: its history is public
    statemgr.expose(Report, can_view_history=lambda obj, user: True)
    with app.app_context():
        db.create_all()
        db.session.add_all([Report(), Report(broken=True)])
        db.session.commit()
        db.session.remove()
    yield app
    dispose(app, db)


def tables(app: Flask, bind: str | None) -> set[str]:
    with app.app_context():
        return set(sa.inspect(db.engines[bind]).get_table_names())


def test_the_extension_tables_live_in_the_default_database(app: Flask) -> None:
    assert {"statemgr_history", "statemgr_blob", "note"} <= tables(app, None)
    assert "report" not in tables(app, None)
    assert tables(app, "archive") == {"report"}


def test_perform_on_a_model_of_another_bind(app: Flask) -> None:
    client = app.test_client()
    done = client.post("/_statemgr/objects/report/1/state/file", json={})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["managers"]["state"]["state"] == "FILED"
    with app.app_context():
        archive = db.engines["archive"]
        with archive.connect() as conn:
            assert conn.execute(sa.select(Report._state).where(Report.id == 1)).scalar_one() == 2
        with db.engine.connect() as conn:
            rows = conn.execute(sa.select(history_table.c.model, history_table.c.object_id)).all()
        assert rows == [("Report", "1")]
    history = client.get("/_statemgr/objects/report/1/history").get_json()
    assert [r["transition"] for r in history["records"]] == ["file"]
    assert app.test_cli_runner().invoke(args=["statemgr", "check"]).output.endswith(": no problems.\n")


def test_a_failed_perform_changes_neither_database(app: Flask) -> None:
    with app.app_context():
        report = db.session.get_one(Report, 2)
        with pytest.raises(RuntimeError, match="broken"):
            report.state.file()
        db.session.rollback()
        db.session.remove()
        with db.engines["archive"].connect() as conn:
            assert conn.execute(sa.select(Report._state).where(Report.id == 2)).scalar_one() == 1
        with db.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(history_table)).scalar_one() == 0
