"""The benchmark databases: a SQLite file and a PostgreSQL schema private to
the process, with the benchmark's tables; dropped afterwards."""

from __future__ import annotations

import contextlib
import os
import tempfile
import typing as t
import uuid

import sqlalchemy as sa
from sqlalchemy import orm

from flask_statemgr.dialects import configure_engine

from .workload import Base, Document

POSTGRES_URL = os.environ.get("STATEMGR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def postgres_schema() -> t.Iterator[tuple[str, str]]:
    """(URL whose connections use a new schema, the schema's name)."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}", schema
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextlib.contextmanager
def databases() -> t.Iterator[dict[str, tuple[str, str | None]]]:
    """``{"sqlite": (url, None), "postgresql": (url, schema)}`` for the
    duration; the SQLite file lives in a temporary directory."""
    with tempfile.TemporaryDirectory() as tmp, postgres_schema() as (pg_url, schema):
        yield {
            "sqlite": (f"sqlite:///{os.path.join(tmp, 'bench.sqlite')}", None),
            "postgresql": (pg_url, schema),
        }


def engine_for(url: str) -> sa.Engine:
    """An engine with the benchmark's tables created (flask_statemgr's
    history and blob tables too)."""
    engine = sa.create_engine(url)
    configure_engine(engine)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    return engine


def insert_documents(engine: sa.Engine, rows: t.Sequence[tuple[int, str]], first_id: int = 1) -> None:
    """Insert (state, title) rows with ids from ``first_id``, in batches."""
    table = t.cast(sa.Table, Document.__table__)
    with engine.begin() as conn:
        for start in range(0, len(rows), 10_000):
            batch = rows[start : start + 10_000]
            conn.execute(
                sa.insert(table),
                [
                    {"id": first_id + start + i, "title": title, "_state": state}
                    for i, (state, title) in enumerate(batch)
                ],
            )


def session(engine: sa.Engine) -> orm.Session:
    """A plain session, configured as Flask-SQLAlchemy's is by default
    (``expire_on_commit=True``)."""
    return orm.Session(engine)
