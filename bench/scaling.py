"""8. Scaling: how listing (3) and perform with the database (5) grow from 10
to 100,000 rows, and how the schema export grows from 1 to 200 managers.

- listing: ``doc.state.transitions(user)`` for every one of N documents,
  per document;
- perform + commit on a table of N rows, on a random row each time (the
  transition that leaves the row's state in the publish / withdraw /
  restore cycle), per transition, on SQLite and PostgreSQL;
- schema: ``flask_statemgr.model_json.build_schema`` and its JSON bytes for M
  models with one manager each (five states, six transitions, one with a
  form), per manager; then ``statemgr.schema()`` called again, which
  answers from the per-app cache.
"""

from __future__ import annotations

import random
import typing as t

import sqlalchemy as sa
from wtforms import Form, IntegerField, StringField
from wtforms.validators import DataRequired, Length, NumberRange

from flask_statemgr import State, StateManager, Transition
from flask_statemgr.model_json import build_schema, dump

from .databases import databases, engine_for, insert_documents, session
from .harness import Case, measure, quick
from .listing import ours_documents
from .report import Report
from .workload import DRAFT, EDITOR, PUBLISHED, WITHDRAWN, Document

TITLE = "Scaling with rows and managers"

#: the cycle's next transition from each state
NEXT = {DRAFT: "publish", PUBLISHED: "withdraw", WITHDRAWN: "restore"}


def listing(report: Report, sizes: list[int]) -> None:
    for n in sizes:
        docs = ours_documents(n)
        # a round of at least ~0.1 s, whatever N
        timing = measure(
            {"list": Case("for d in docs: d.state.transitions(user)", {"docs": docs, "user": EDITOR})},
            round_ns=100_000_000,
            rounds=3 if n >= 10_000 else 5,
        )["list"]
        per_doc = timing.ns / n
        report.rate(f"list-{n}", f"listing, N = {n:,}: per document", "flask_statemgr", 1e9 / per_doc)
    report.compare("listing per document, N = 100,000 vs N = 10", f"list-{sizes[-1]}", "list-10")


def perform(report: Report, sizes: list[int]) -> None:
    round_ns = 100_000_000 if quick() else 300_000_000
    with databases() as dbs:
        for db, (url, _) in dbs.items():
            engine = engine_for(url)
            inserted = 0
            for n in sizes:
                # grow the same table: cycle states over every row
                cycle = (DRAFT, PUBLISHED, WITHDRAWN)
                insert_documents(
                    engine, [(cycle[i % 3], f"Doc {i}") for i in range(inserted, n)], first_id=inserted + 1
                )
                inserted = n
                # what autovacuum does to a growing table: without fresh
                # statistics, PostgreSQL keeps the plans it cached for the
                # statements psycopg prepared while the table held 10 rows
                with engine.begin() as conn:
                    conn.execute(sa.text("ANALYZE"))
                s = session(engine)
                rng = random.Random(n)

                def step(s: t.Any = s, rng: random.Random = rng, n: int = n) -> None:
                    doc = s.get(Document, rng.randint(1, n))
                    getattr(doc.state, NEXT[doc.state.value])(EDITOR)
                    s.commit()

                timing = measure({"perform": Case("step()", {"step": step})}, round_ns=round_ns, rounds=5)["perform"]
                s.close()
                report.timing(f"{db}-{n}", f"{db}: perform + commit, N = {n:,} rows", "flask_statemgr", timing)
            engine.dispose()
            report.compare(f"{db}: perform + commit, N = {sizes[-1]:,} vs N = 10", f"{db}-{sizes[-1]}", f"{db}-10")


class _Form(Form):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    priority = IntegerField("Priority", validators=[NumberRange(1, 5)], default=3)


def schema_models(count: int) -> dict[str, type]:
    """``count`` model classes, each with a manager of its own."""
    models = {}
    for i in range(count):
        draft, pending, published = State(1, "Draft"), State(2, "Pending"), State(3, "Published")
        withdrawn, archived = State(4, "Withdrawn"), State(5, "Archived")
        body: dict[str, t.Any] = {
            "DRAFT": draft,
            "PENDING": pending,
            "PUBLISHED": published,
            "WITHDRAWN": withdrawn,
            "ARCHIVED": archived,
            "submit": Transition(draft, pending, "Submit", roles={"author"}),
            "publish": Transition({draft, pending}, published, "Publish", roles={"editor"}, form=_Form),
            "reject": Transition(pending, draft, "Reject", roles={"editor"}),
            "withdraw": Transition(published, withdrawn, "Withdraw", roles={"editor"}),
            "restore": Transition(withdrawn, draft, "Restore", roles={"editor"}),
            "archive": Transition({published, withdrawn}, archived, "Archive", roles={"owner"}),
        }
        manager = type(f"Kind{i}State", (StateManager,), body)
        models[f"kind{i}"] = type(f"Kind{i}", (), {"state": manager("_state")})
    return models


def schema(report: Report, counts: list[int]) -> None:
    from flask import Flask

    from flask_statemgr import StateMgr

    for m in counts:
        models = schema_models(m)
        timing = measure(
            {
                "schema": Case(
                    "dump(build_schema(models))", {"dump": dump, "build_schema": build_schema, "models": models}
                )
            },
            round_ns=100_000_000,
            rounds=5,
        )["schema"]
        report.rate(
            f"schema-{m}",
            f"schema export, {m} managers: per manager",
            "flask_statemgr",
            m * timing.per_second,
            total_ns=timing.ns,
        )
    report.timing("schema-total", f"schema export, {m} managers: all", "flask_statemgr", timing)
    app = Flask(__name__)
    ext = StateMgr(app)
    for name, model in models.items():
        ext.expose(model, name=name)
    with app.app_context():
        assert len(ext.schema()["managers"]) == m
        timing = measure({"cached": Case("ext.schema()", {"ext": ext})})["cached"]
    report.timing("schema-cached", f"statemgr.schema() again, {m} managers (cached)", "flask_statemgr", timing)
    report.compare(f"cached statemgr.schema() vs building it, {m} managers", "schema-cached", "schema-total")
    report.compare(f"schema export per manager, {counts[-1]} vs 1 managers", f"schema-{counts[-1]}", "schema-1")


def run(report: Report) -> None:
    if quick():
        rows, managers = [10, 1_000, 100_000], [1, 200]
    else:
        rows, managers = [10, 100, 1_000, 10_000, 100_000], [1, 10, 50, 200]
    listing(report, rows)
    perform(report, rows)
    schema(report, managers)
    report.note(
        "Ratios of N = 100,000 against N = 10 compare per-item rates: 1.00x means "
        "no slowdown per row (or per manager, for the schema)."
    )
