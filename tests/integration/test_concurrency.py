"""Two workers performing conflicting transitions on the same row at once:
exactly one succeeds, the other gets :class:`StateConflict`, and nothing of
the loser is written.

Each round both workers load the row, wait at a barrier (so both have read
the state before either writes), then perform. The loser commits its own
transaction afterwards, as an application going on would, so the test also
proves the savepoint dropped the loser's writes. Worker 0 always publishes;
worker 1 publishes on even rounds and deletes on odd ones (``delete`` has no
execute hook, so then the winner decides whether ``executed`` is set).
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import typing as t
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from apps import make_engine
from core_models import (
    ALICE,
    Project,
    add_project,
    history_rows,
)
from sqlalchemy import orm

from flask_statemgr import StateConflict
from flask_statemgr.tables import history_table

ROUNDS = 30
#: seconds a worker waits for the other at the barrier before giving up
PATIENCE = 60


class Barrier(t.Protocol):
    def wait(self, timeout: float | None = None) -> int: ...


def transition_for(worker: int, round_: int) -> str:
    return "delete" if worker == 1 and round_ % 2 else "publish"


def attempt(engine: sa.Engine, project_id: int, worker: int, round_: int, barrier: Barrier) -> str:
    """One worker's try: ``"won"``, ``"conflict"``, or the unexpected error."""
    with orm.Session(engine) as session:
        project = session.get_one(Project, project_id)
        if not project.state.DRAFT:
            return f"not a draft: {project.state.value}"
        barrier.wait(PATIENCE)
        name = transition_for(worker, round_)
        try:
            getattr(project.state, name)(ALICE, data={"worker": worker})
        except StateConflict:
            session.commit()
            return "conflict"
        except Exception as e:  # noqa: BLE001 - reported to the test
            return f"{type(e).__name__}: {e}"
        session.commit()
        return "won"


def process_worker(url: str, worker: int, tasks: t.Any, results: t.Any, barrier: Barrier) -> None:
    """A worker process: attempt each (project id, round) it is sent."""
    engine = make_engine(url)
    try:
        while (task := tasks.get()) is not None:
            project_id, round_ = task
            try:
                outcome = attempt(engine, project_id, worker, round_, barrier)
            except Exception as e:  # noqa: BLE001 - reported to the test
                outcome = f"{type(e).__name__}: {e}"
            results.put((worker, outcome))
    finally:
        engine.dispose()


def check_round(engine: sa.Engine, project_id: int, round_: int, outcomes: dict[int, str]) -> None:
    """Exactly one winner, and the row and history hold only its work."""
    assert sorted(outcomes.values()) == ["conflict", "won"], (round_, outcomes)
    (winner,) = [w for w, outcome in outcomes.items() if outcome == "won"]
    name = transition_for(winner, round_)
    with engine.connect() as conn:
        row = conn.execute(sa.select(Project._state, Project.executed).where(Project.id == project_id)).one()
        records = conn.execute(
            sa.select(history_table.c.transition, history_table.c.payload).where(
                history_table.c.model == "Project",
                history_table.c.object_id == str(project_id),
            )
        ).all()
    assert row._state == (2 if name == "publish" else 4), (round_, outcomes)
    # the execute hook's side effect is the winner's or, if the winner had
    # no hook, nobody's
    expected = repr([("worker", winner)]) if name == "publish" else None
    assert row.executed == expected, (round_, outcomes, row.executed)
    assert [r.transition for r in records] == [name], (round_, outcomes)


def run_rounds(
    engine: sa.Engine,
    contend: t.Callable[[int, int], dict[int, str]],
) -> None:
    with orm.Session(engine) as session:
        ids = [add_project(session).id for _ in range(ROUNDS)]
    for round_, project_id in enumerate(ids):
        check_round(engine, project_id, round_, contend(project_id, round_))
    assert len(history_rows(engine)) == ROUNDS


def test_two_threads(core_engine: sa.Engine) -> None:
    barrier = threading.Barrier(2)
    with ThreadPoolExecutor(2) as pool:

        def contend(project_id: int, round_: int) -> dict[int, str]:
            futures = {w: pool.submit(attempt, core_engine, project_id, w, round_, barrier) for w in (0, 1)}
            return {w: f.result(PATIENCE * 2) for w, f in futures.items()}

        run_rounds(core_engine, contend)


def test_two_processes(core_engine: sa.Engine, database_url: str) -> None:
    # fork, as gunicorn starts its workers (and far quicker to start); spawn
    # where forking a process with threads is unsafe
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    tasks = [context.Queue(), context.Queue()]
    workers = [
        context.Process(target=process_worker, args=(database_url, w, tasks[w], results, barrier), daemon=True)
        for w in (0, 1)
    ]
    for worker in workers:
        worker.start()
    try:

        def contend(project_id: int, round_: int) -> dict[int, str]:
            for queue in tasks:
                queue.put((project_id, round_))
            return dict(results.get(timeout=PATIENCE * 2) for _ in tasks)

        run_rounds(core_engine, contend)
    finally:
        for queue in tasks:
            queue.put(None)
        for worker in workers:
            worker.join(PATIENCE)
            if worker.is_alive():
                worker.kill()
    assert [w.exitcode for w in workers] == [0, 0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_connection_survives_a_refused_commit(core_engine: sa.Engine) -> None:
    """A COMMIT refused with "database is locked" must not leave the pooled
    connection inside a transaction (the next BEGIN would fail)."""
    hasty = make_engine(core_engine.url)

    @sa.event.listens_for(hasty, "connect")
    def _impatient(dbapi_connection: t.Any, record: t.Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout = 100")

    with orm.Session(core_engine) as session:
        project_id = add_project(session).id
    try:
        with core_engine.connect() as reader:
            reader.begin()
            # a read transaction keeps writers from committing on SQLite;
            # the driver opens none for a SELECT alone
            reader.exec_driver_sql("BEGIN")
            reader.execute(sa.select(Project.id)).all()
            with orm.Session(hasty) as writer:
                writer.get_one(Project, project_id).title = "changed"
                with pytest.raises(sa.exc.OperationalError, match="locked"):
                    writer.commit()
        with orm.Session(hasty) as again:
            assert again.get_one(Project, project_id).title == "Project"
    finally:
        hasty.dispose()
