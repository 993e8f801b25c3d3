"""Migrations: the state CHECK constraints through Alembic's autogenerate,
run for real on SQLite (batch mode) and PostgreSQL, and ``flask statemgr
check`` against a live database."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import orm

from flask_statemgr import State, StateManager

#: what Flask-Migrate's template and the Alembic cookbook recommend
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# A migration environment as Flask-Migrate's env.py sets it up, with the one
# line the README documents; the connection and the metadata come from the
# test (Alembic's cookbook: "sharing a connection").
ENV_PY = """
import flask_statemgr.alembic  # noqa: F401
from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=config.attributes["metadata"],
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
"""


def ticket_models(*values: t.Any) -> sa.MetaData:
    """A fresh ``Ticket`` model whose manager declares ``values``."""
    manager = type("TicketState", (StateManager,), {f"S{v}": State(v, f"State {v}") for v in values})

    class Base(orm.DeclarativeBase):
        metadata = sa.MetaData(naming_convention=NAMING)

    type(
        "Ticket",
        (Base,),
        {
            "__tablename__": "ticket",
            "id": orm.mapped_column(sa.Integer, primary_key=True),
            "_state": manager.column(default=values[0]),
            "state": manager("_state"),
        },
    )
    return Base.metadata


class Migrations:
    """An Alembic project in a directory, run on one connection."""

    def __init__(self, directory: Path, connection: sa.Connection) -> None:
        self.config = Config(directory.parent / "alembic.ini")
        command.init(self.config, str(directory))
        self.config.set_main_option("script_location", str(directory))
        (directory / "env.py").write_text(ENV_PY)
        self.config.attributes["connection"] = connection
        self.directory = directory

    def autogenerate(self, metadata: sa.MetaData, message: str) -> str:
        """Autogenerate a revision against the live database and upgrade to
        it; the revision's source."""
        self.config.attributes["metadata"] = metadata
        script = command.revision(self.config, message=message, autogenerate=True)
        assert not isinstance(script, list) and script is not None
        command.upgrade(self.config, "head")
        return Path(script.path).read_text()

    def downgrade(self) -> None:
        command.downgrade(self.config, "-1")


@pytest.fixture
def connection(database_url: str) -> t.Iterator[sa.Connection]:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        yield conn
        conn.rollback()
        # leave the (shared) PostgreSQL schema as it was
        for table in ("ticket", "statemgr_history", "statemgr_blob", "alembic_version"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        conn.commit()
    engine.dispose()


def accepts(connection: sa.Connection, value: int) -> bool:
    """Whether the live ``ticket`` table stores ``value``."""
    try:
        with connection.begin_nested():
            connection.execute(
                sa.text("INSERT INTO ticket (id, _state) SELECT COALESCE(MAX(id), 0) + 1, :v FROM ticket"), {"v": value}
            )
    except sa.exc.IntegrityError:
        return False
    return True


def test_autogenerate_creates_changes_and_restores_the_check(connection: sa.Connection, tmp_path: Path) -> None:
    migrations = Migrations(tmp_path / "migrations", connection)
    first = migrations.autogenerate(ticket_models(1, 2), "tickets")
    # rendered with the table, under its final name
    assert "sa.CheckConstraint('_state IN (1, 2)', name=op.f('ck_ticket__state'))" in first
    assert (accepts(connection, 2), accepts(connection, 3)) == (True, False)

    # what autogenerate compares, through its API
    context = MigrationContext.configure(connection)
    diffs = [(kind, c.name) for kind, c, *_ in compare_metadata(context, ticket_models(1, 2, 3))]
    assert diffs == [("remove_constraint", "ck_ticket__state"), ("add_constraint", "ck_ticket__state")]

    second = migrations.autogenerate(ticket_models(1, 2, 3), "a third state")
    assert "drop_constraint(" in second and "'ck_ticket__state'" in second
    assert "create_check_constraint(" in second and "'_state IN (1, 2, 3)'" in second
    assert accepts(connection, 3)
    if connection.dialect.name == "sqlite":
        assert "batch_alter_table('ticket'" in second

    unchanged = migrations.autogenerate(ticket_models(1, 2, 3), "nothing")
    assert "ck_ticket__state" not in unchanged

    # downgrading both steps puts the live constraint of the first back,
    # once no row holds the value it does not allow
    connection.execute(sa.text("DELETE FROM ticket WHERE _state = 3"))
    connection.commit()
    migrations.downgrade()
    migrations.downgrade()
    assert (accepts(connection, 2), accepts(connection, 3)) == (True, False)


def test_autogenerate_adds_a_missing_check(connection: sa.Connection, tmp_path: Path) -> None:
    connection.execute(sa.text("CREATE TABLE ticket (id INTEGER PRIMARY KEY, _state INTEGER NOT NULL)"))
    connection.commit()
    metadata = ticket_models(1, 2)
    metadata.create_all(connection, tables=[t for t in metadata.sorted_tables if t.name != "ticket"])
    connection.commit()
    migrations = Migrations(tmp_path / "migrations", connection)
    upgrade = migrations.autogenerate(metadata, "check").split("def downgrade")[0]
    assert "create_check_constraint(" in upgrade and "drop_constraint(" not in upgrade
    assert (accepts(connection, 1), accepts(connection, 3)) == (True, False)


LEGACY_TICKET = (
    "CREATE TABLE ticket (id INTEGER PRIMARY KEY, _state INTEGER NOT NULL,"
    " CONSTRAINT ck_ticket__state_state CHECK (_state IN (1, 2)))"
)


def test_autogenerate_replaces_the_legacy_check(connection: sa.Connection, tmp_path: Path) -> None:
    """A database that ``create_all`` built with flask_statemgr 0.1 has the
    CHECK under its old name; the migration renames it as it widens it."""
    connection.execute(sa.text(LEGACY_TICKET))
    connection.commit()
    metadata = ticket_models(1, 2, 3)
    metadata.create_all(connection, tables=[t for t in metadata.sorted_tables if t.name != "ticket"])
    connection.commit()
    upgrade = Migrations(tmp_path / "migrations", connection).autogenerate(metadata, "rename").split("def downgrade")[0]
    assert "drop_constraint(" in upgrade and "'ck_ticket__state_state'" in upgrade
    assert "'_state IN (1, 2, 3)'" in upgrade
    assert accepts(connection, 3)
    names = [c["name"] for c in sa.inspect(connection).get_check_constraints("ticket")]
    assert names == ["ck_ticket__state"]


def test_naming_convention_keeps_the_final_name() -> None:
    table = ticket_models(1, 2).tables["ticket"]
    names = [c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)]
    assert names == ["ck_ticket__state"]
    copy = table.to_metadata(sa.MetaData(naming_convention=NAMING))
    assert [c.name for c in copy.constraints if isinstance(c, sa.CheckConstraint)] == ["ck_ticket__state"]


def ticket_app(database_url: str, *values: t.Any) -> t.Any:
    """A Flask app whose ``Ticket`` manager declares ``values``."""
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_statemgr import StateMgr

    db = SQLAlchemy(metadata=sa.MetaData(naming_convention=NAMING))
    manager = type("TicketState", (StateManager,), {f"S{v}": State(v, f"State {v}") for v in values})
    type(
        "Ticket",
        (db.Model,),
        {
            "__tablename__": "ticket",
            "id": orm.mapped_column(sa.Integer, primary_key=True),
            "_state": manager.column(default=values[0]),
            "state": manager("_state"),
        },
    )
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    db.init_app(app)
    StateMgr(app, db=db)
    return app


def check(app: t.Any) -> t.Any:
    """``flask statemgr check`` on ``app``, whose connections are closed
    after."""
    result = app.test_cli_runner().invoke(args=["statemgr", "check"])
    with app.app_context():
        for engine in app.extensions["sqlalchemy"].engines.values():
            engine.dispose()
    return result


def test_check_reports_a_differing_constraint_and_undeclared_values(
    connection: sa.Connection, database_url: str
) -> None:
    ticket_models(1, 2, 3).create_all(connection)
    connection.execute(sa.text("INSERT INTO ticket (id, _state) VALUES (1, 1), (2, 3), (3, 3)"))
    connection.commit()
    assert check(ticket_app(database_url, 1, 2, 3)).output.endswith(": no problems.\n")
    result = check(ticket_app(database_url, 1, 2, 4))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "error: ticket._state (TicketState): the CHECK constraint ck_ticket__state does not allow 4 and still allows 3",
        "error: ticket._state (TicketState): 2 rows hold 3, which no state declares (keys 2, 3)",
    ]


def test_check_reports_a_missing_constraint(connection: sa.Connection, database_url: str) -> None:
    connection.execute(sa.text("CREATE TABLE ticket (id INTEGER PRIMARY KEY, _state INTEGER NOT NULL)"))
    connection.execute(sa.text("INSERT INTO ticket (id, _state) VALUES (1, 7)"))
    connection.commit()
    result = check(ticket_app(database_url, 1, 2))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "error: ticket._state (TicketState): the CHECK constraint ck_ticket__state is missing",
        "error: ticket._state (TicketState): 1 row holds 7, which no state declares (keys 1)",
    ]


def test_check_reports_the_legacy_name(connection: sa.Connection, database_url: str) -> None:
    connection.execute(sa.text(LEGACY_TICKET))
    connection.commit()
    result = check(ticket_app(database_url, 1, 2))
    assert result.exit_code == 1
    assert result.output == (
        "error: ticket._state (TicketState): the CHECK constraint is named ck_ticket__state_state"
        " instead of ck_ticket__state\n"
    )


def test_a_database_that_cannot_list_checks(
    connection: sa.Connection, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dialect without CHECK reflection (MySQL before 8.0.16, say):
    autogenerate compares nothing, and check says it could not compare."""
    metadata = ticket_models(1, 2)
    metadata.create_all(connection)
    connection.commit()

    def unsupported(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        raise NotImplementedError

    monkeypatch.setattr(sa.engine.reflection.Inspector, "get_check_constraints", unsupported)
    context = MigrationContext.configure(connection)
    assert [d for d in compare_metadata(context, ticket_models(1, 2, 3)) if "constraint" in d[0]] == []
    result = check(ticket_app(database_url, 1, 2, 3))
    assert result.exit_code == 1
    name = connection.dialect.name
    assert result.output == f"error: ticket._state (TicketState): {name} cannot list CHECK constraints to compare\n"
