"""What the test models and apps share: the user they act as, the engine
of the models without Flask, one app factory for the app modules
(tests/api_app.py, coaster_app.py, i18n_app.py, reliability_app.py), and
closing an app down.

An app module holds its ``db``, its models, ``CONFIG`` (what it sets beyond
the defaults of :func:`create_app`) and ``setup(app, statemgr)`` (exposing
its models, loading its users, anything else the app adds). Tests get apps
from the ``make_app`` fixture (conftest.py), which also creates and drops
their tables; a module-scoped fixture or a served app calls
:func:`create_app` and :func:`dispose` itself.
"""

from __future__ import annotations

import dataclasses
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import orm

from flask_statemgr import StateMgr
from flask_statemgr.dialects import configure_engine


@dataclasses.dataclass(frozen=True)
class User:
    """A user of the core's models and of the api and coaster apps."""

    id: int
    name: str
    roles: frozenset[str] = frozenset()


class AppModule(t.Protocol):
    """A module of models that :func:`create_app` turns into an app."""

    __name__: str
    db: SQLAlchemy
    CONFIG: t.Mapping[str, t.Any]

    def setup(self, app: Flask, statemgr: StateMgr) -> None: ...


def make_engine(url: str, **kwargs: t.Any) -> sa.Engine:
    """An engine configured the way the core needs (savepoints on SQLite),
    for the models without Flask (tests/core_models.py, chain_models.py)."""
    engine = sa.create_engine(url, **kwargs)
    configure_engine(engine)
    return engine


def database() -> SQLAlchemy:
    """A Flask-SQLAlchemy instance with a declarative base (and so metadata)
    of its own, so each app module's tables stay apart."""

    class Base(orm.DeclarativeBase):
        pass

    return SQLAlchemy(model_class=Base)


def create_app(models: AppModule, database_url: str, **config: t.Any) -> tuple[Flask, StateMgr]:
    """The app of ``models`` on ``database_url``, in testing mode unless its
    ``CONFIG`` says otherwise; ``config`` comes last."""
    app = Flask(models.__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=database_url, SECRET_KEY="test", TESTING=True)
    app.config.update(models.CONFIG)
    app.config.update(config)
    models.db.init_app(app)
    statemgr = StateMgr(app, db=models.db)
    models.setup(app, statemgr)
    return app, statemgr


def dispose(app: Flask, db: SQLAlchemy, *, drop: bool = True) -> None:
    """Give back the app's connections, after dropping its tables if
    ``drop``."""
    with app.app_context():
        db.session.remove()
        if drop:
            db.drop_all()
        for engine in db.engines.values():
            engine.dispose()
