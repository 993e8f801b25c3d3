"""9. Many objects at once, on a SQLite file and on PostgreSQL.

- perform_all: the publish / withdraw / restore cycle on 5,000 titled
  documents, one transition on all of them and a commit per operation:
  ``Document.state.withdraw.perform_all(select(Document).where(...), user,
  session=s)`` (it loads the 5,000 objects, checks each: state, role, and
  for publish the title precondition), beside the hand-written bulk change
  doing the same on 5,000 documents of its own: one ``UPDATE ... WHERE id
  BETWEEN ... AND state IN (sources) [AND title <> ''] RETURNING id``, one
  history row per returned id inserted with ``executemany``, the commit.
  It loads no object and checks the role once.
- cascade: ``project.state.delete`` of a project cascading to 1,000 and
  10,000 sessions (plan, perform, commit; ``bench/chains.py``'s models and
  functions), beside its hand-written bulk delete: two ``UPDATE``s and the
  history rows in one ``executemany``. ``--quick`` stops at 1,000.

Each figure gives the SQL statements one operation sends (BEGIN, COMMIT
left out). Target for both: at most 2x the hand-written code (ratio at
least 0.5).
"""

from __future__ import annotations

import datetime
import itertools
import statistics
import typing as t

import sqlalchemy as sa
from sqlalchemy import orm

from flask_statemgr.tables import history_table

from .databases import databases, engine_for, insert_documents, session
from .harness import Case, measure, quick
from .report import Report
from .workload import CYCLE, DRAFT, EDITOR, TRANSITIONS, DocState, Document

TITLE = "Many objects at once: perform_all on 5,000 documents, a cascade over 1,000 / 10,000 children"

COUNT = 5_000
CONTROL = {"BEGIN", "COMMIT", "ROLLBACK"}


def hand_written(s: orm.Session, name: str, low: int, high: int, user_id: str) -> int:
    """The bulk change written by hand: a guarded UPDATE, the history rows,
    the commit; how many rows it moved."""
    sources, target, _ = TRANSITIONS[name]
    where = [Document.id.between(low, high), Document._state.in_(sources)]
    if name == "publish":
        where.append(Document.title != "")
    moved = s.scalars(sa.update(Document).where(*where).values(_state=target).returning(Document.id)).all()
    at = datetime.datetime.now(datetime.UTC)
    source = DocState._by_value[sources[0]].name
    row = {
        "model": "Document",
        "manager": "state",
        "transition": name,
        "source": source,
        "target": DocState._by_value[target].name,
        "user_id": user_id,
        "at": at,
        "payload": None,
        "parent_id": None,
    }
    s.execute(sa.insert(history_table), [{**row, "object_id": str(i)} for i in moved])
    s.commit()
    return len(moved)


def perform_all_cases(engine: sa.Engine) -> dict[str, Case]:
    insert_documents(engine, [(DRAFT, f"Document {i}") for i in range(2 * COUNT)])
    s = session(engine)
    ours = Document.id.between(1, COUNT)
    return {
        "ours": Case(
            "result = getattr(Document.state, next(names)).perform_all(select(Document).where(ours), user, session=s)\n"
            "assert not result.refused and len(result.performed) == count\n"
            "s.commit()",
            {
                "Document": Document,
                "names": itertools.cycle(CYCLE),
                "select": sa.select,
                "ours": ours,
                "user": EDITOR,
                "s": s,
                "count": COUNT,
            },
        ),
        "raw": Case(
            "assert hand_written(s, next(names), low, high, user_id) == count",
            {
                "hand_written": hand_written,
                "names": itertools.cycle(CYCLE),
                "s": s,
                "low": COUNT + 1,
                "high": 2 * COUNT,
                "user_id": str(EDITOR.id),
                "count": COUNT,
            },
        ),
    }


def statements(engine: sa.Engine, case: Case) -> int:
    """Statements one operation of ``case`` sends (one full cycle counted)."""
    sent = [0]

    def count(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        sent[0] += statement.strip().upper() not in CONTROL

    code = compile(case.stmt, "<statements>", "exec")
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in CYCLE:
            exec(code, dict(case.namespace))  # noqa: S102 - our own statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return round(sent[0] / len(CYCLE))


def cascade_figures(report: Report, db: str, url: str) -> None:
    from . import chains

    engine = chains.create_database(url)
    counter = chains.Counter(engine)
    try:
        for children in (1_000,) if quick() else (1_000, 10_000):
            runs = max(3, chains.runs_for(children))
            with orm.Session(engine) as s:
                ours = [chains.add_project(s, sessions=children).id for _ in range(runs)]
                theirs = [chains.add_project(s, sessions=children).id for _ in range(runs)]
            # taking turns, so a busy moment slows both alike
            results, bulk = [], []
            for mine, other in zip(ours, theirs):
                results.append(chains.cascade(engine, counter, mine, children))
                bulk.append(chains.baseline(engine, counter, other, children))
            total = statistics.median(r[0] + r[2] for r in results)
            base = statistics.median(b[0] for b in bulk)
            key = f"{db}:cascade:{children}"
            report.rate(
                key,
                f"{db}: project.state.delete cascading to {children:,} sessions, plan + perform + commit",
                "flask_statemgr",
                1 / total,
                statements=results[0][1] + results[0][3],
                runs=runs,
            )
            report.rate(
                f"{key}:raw",
                f"{db}: the hand-written bulk delete, {children:,} sessions",
                "SQLAlchemy Core (raw)",
                1 / base,
                statements=bulk[0][1],
                runs=runs,
            )
            report.compare(f"{db}: cascade over {children:,} children, <= 2x raw", key, f"{key}:raw", minimum=0.5)
    finally:
        # no drop: the SQLite file and the PostgreSQL schema go as a whole
        # (dropping tables on SQLite checks every foreign key row by row)
        engine.dispose()


def run(report: Report) -> None:
    with databases() as urls:
        for db, (url, _) in urls.items():
            engine = engine_for(url)
            cases = perform_all_cases(engine)
            sent = {key: statements(engine, case) for key, case in cases.items()}
            timings = measure(cases, rounds=3 if quick() else 5)
            report.timing(
                f"{db}:ours",
                f"{db}: perform_all on {COUNT:,} documents + commit (select, check each)",
                "flask_statemgr",
                timings["ours"],
                statements=sent["ours"],
            )
            report.timing(
                f"{db}:raw",
                f"{db}: bulk UPDATE ... RETURNING + executemany history rows + commit",
                "SQLAlchemy ORM (raw)",
                timings["raw"],
                statements=sent["raw"],
            )
            report.compare(f"{db}: perform_all, {COUNT:,} objects, <= 2x raw", f"{db}:ours", f"{db}:raw", minimum=0.5)
            with engine.connect() as conn:
                states = {
                    side: conn.scalar(sa.select(sa.func.count(sa.distinct(Document._state))).where(where))
                    for side, where in (("ours", Document.id <= COUNT), ("raw", Document.id > COUNT))
                }
                records = conn.scalar(sa.select(sa.func.count()).select_from(history_table))
            report.check(
                f"{db}: every document moved together, one record each",
                set(states.values()) == {1} and records is not None and records % COUNT == 0,
                f"{records} history records; distinct states per side {states}",
            )
            engine.dispose()
            cascade_figures(report, db, url)
