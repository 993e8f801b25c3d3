"""Cost of a cascade per child, beside a hand-written bulk update.

Run with ``python bench/chains.py``. For a project with 10, 100, 1,000 and
10,000 sessions, on a SQLite file and on PostgreSQL, it measures:

-   plan: ``project.state.delete.plan(user)`` from a fresh identity map, so
    it includes loading the children and checking each one (state, requires,
    roles, preconditions);
-   perform: ``perform_plan`` of that plan and the commit: the sessions'
    execute hooks, the compare-and-set ``UPDATE``s and one history record per
    step (the project's two managers and every session);
-   baseline: what a hand-written bulk delete does, in the same run: one
    ``UPDATE session SET ... WHERE project_id = ?`` (setting what the hooks
    set), the project's ``UPDATE`` and as many history rows, inserted in one
    multi-row statement after the root's, then the commit. It checks nothing.

Each figure is the median of several runs (each on a project of its own),
with the number of SQL statements one run sends. ``BENCH_QUICK=1`` stops at
1,000 sessions. PostgreSQL comes from ``STATEMGR_TEST_POSTGRES`` (the test
suite's default otherwise) and works in a schema of its own, dropped
afterwards; if it cannot be reached it is reported and skipped.
"""

from __future__ import annotations

import datetime
import os
import statistics
import sys
import tempfile
import time
import typing as t
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import orm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from chain_models import (  # noqa: E402
    DELETED_AT,
    OWNER,
    Project,
    ProjectState,
    Session,
    SessionState,
    add_project,
    create_database,
    drop_database,
)

from flask_statemgr.tables import history_table  # noqa: E402

POSTGRES_URL = os.environ.get("STATEMGR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
QUICK = os.environ.get("BENCH_QUICK") == "1"
SIZES = (10, 100, 1_000) if QUICK else (10, 100, 1_000, 10_000)


def runs_for(children: int) -> int:
    """Enough runs for a stable median without spending long on large N."""
    return max(1, min(15, 5_000 // children))


class Counter:
    """Counts the statements an engine sends while active."""

    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: t.Any) -> None:
        self.count += 1

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


def cascade(engine: sa.Engine, counter: Counter, project_id: int, children: int) -> tuple[float, int, float, int]:
    """(plan seconds, statements, perform seconds, statements) of one run."""
    with orm.Session(engine) as db:
        project = db.get_one(Project, project_id)
        counter.take()
        started = time.perf_counter()
        plan = project.state.delete.plan(OWNER)
        planned = time.perf_counter() - started
        plan_statements = counter.take()
        assert plan.ok and len(plan.steps) == children + 2, plan.blockers
        started = time.perf_counter()
        project.state.delete.perform_plan(plan, OWNER)
        db.commit()
        performed = time.perf_counter() - started
        return planned, plan_statements, performed, counter.take()


def baseline(engine: sa.Engine, counter: Counter, project_id: int, children: int) -> tuple[float, int]:
    """(seconds, statements) of the hand-written bulk delete."""
    counter.take()
    started = time.perf_counter()
    with engine.begin() as conn:
        at = datetime.datetime.now(datetime.UTC)
        conn.execute(
            sa.update(Project)
            .where(Project.id == project_id)
            .values(_state=ProjectState.DELETED.value, _review="locked")
        )
        ids = conn.scalars(
            sa.update(Session)
            .where(Session.project_id == project_id)
            .values(_state=SessionState.DELETED.value, booking="", deleted_at=DELETED_AT)
            .returning(Session.id)
        ).all()
        row = {
            "model": "Project",
            "object_id": str(project_id),
            "manager": "state",
            "transition": "delete",
            "source": "DRAFT",
            "target": "DELETED",
            "user_id": str(OWNER.id),
            "at": at,
            "payload": None,
            "parent_id": None,
        }
        root = conn.scalar(sa.insert(history_table).returning(history_table.c.id), row)
        rows = [
            {
                **row,
                "manager": "review",
                "transition": "lock",
                "source": "PENDING",
                "target": "LOCKED",
                "parent_id": root,
            }
        ]
        rows += [{**row, "model": "Session", "object_id": str(i), "parent_id": root} for i in ids]
        conn.execute(sa.insert(history_table), rows)
    elapsed = time.perf_counter() - started
    assert len(ids) == children
    return elapsed, counter.take()


def measure(name: str, url: str) -> list[str]:
    engine = create_database(url)
    counter = Counter(engine)
    lines = []
    try:
        for children in SIZES:
            runs = runs_for(children)
            with orm.Session(engine) as db:
                ours = [add_project(db, sessions=children).id for _ in range(runs)]
                theirs = [add_project(db, sessions=children).id for _ in range(runs)]
            results = [cascade(engine, counter, pid, children) for pid in ours]
            bulk = [baseline(engine, counter, pid, children) for pid in theirs]
            plan = statistics.median(r[0] for r in results)
            perform = statistics.median(r[2] for r in results)
            base = statistics.median(b[0] for b in bulk)
            total = plan + perform
            lines.append(
                f"{name:10} {children:>6} {runs:>4} "
                f"{plan * 1e3:>9.1f} {results[0][1]:>4} {perform * 1e3:>9.1f} {results[0][3]:>4} "
                f"{total / children * 1e6:>9.1f} "
                f"{base * 1e3:>9.1f} {bulk[0][1]:>4} {base / children * 1e6:>9.1f} {total / base:>7.1f}x"
            )
            print(lines[-1], flush=True)
    finally:
        drop_database(engine)
    return lines


def main() -> int:
    print(
        "Project.delete cascading to N sessions (+ the project's review); median of runs; "
        "stmts = SQL statements per run\n"
    )
    print(
        f"{'database':10} {'N':>6} {'runs':>4} {'plan ms':>9} {'stmt':>4} {'perf ms':>9} {'stmt':>4} "
        f"{'us/child':>9} {'bulk ms':>9} {'stmt':>4} {'us/child':>9} {'vs bulk':>8}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        measure("sqlite", f"sqlite:///{Path(tmp) / 'chains.sqlite'}")
    # a schema of our own in the shared database, dropped afterwards
    schema = f"bench_chains_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as e:
        print(f"postgresql: not reachable, skipped ({e.orig})")
        return 0
    try:
        sep = "&" if "?" in POSTGRES_URL else "?"
        measure("postgresql", f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}")
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
