"""7. Concurrency: four processes perform random transitions on 100 hot rows
of PostgreSQL for a bounded time, each commit on its own.

Each worker picks a random row, reads it, picks a random transition the
editor may perform from that state, performs it and commits; a
``StateConflict`` (another worker changed the row first) is rolled back and
counted. Afterwards the history is replayed: per row, the records in order
must form one chain from DRAFT to the row's final state (each record's
source is the previous record's target), and there must be exactly one
record per successful perform. A transition applied twice would break the
chain or the count.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import typing as t

import sqlalchemy as sa

from .databases import engine_for, insert_documents, postgres_schema, session
from .harness import quick
from .report import Report
from .workload import DRAFT, EDITOR, NAMES, TRANSITIONS, Document

TITLE = "Concurrency: 4 processes, random transitions on 100 hot rows (PostgreSQL)"
WORKERS = 4
ROWS = 100


def worker(url: str, seed: int, seconds: float, start: t.Any, results: t.Any) -> None:
    """One process: perform until the deadline; report (performed,
    conflicts, seconds)."""
    from flask_statemgr import StateConflict

    rng = random.Random(seed)
    engine = sa.create_engine(url)
    s = session(engine)
    by_source: dict[int, list[str]] = {}
    for name, (sources, _, role) in TRANSITIONS.items():
        if role in EDITOR.roles:
            for source in sources:
                by_source.setdefault(source, []).append(name)
    performed = conflicts = 0
    start.wait()
    began = time.perf_counter()
    deadline = began + seconds
    while time.perf_counter() < deadline:
        doc = s.get(Document, rng.randint(1, ROWS))
        assert doc is not None
        choices = by_source.get(doc.state.value)
        if not choices:
            s.rollback()
            continue
        try:
            getattr(doc.state, rng.choice(choices))(EDITOR)
            s.commit()
            performed += 1
        except StateConflict:
            s.rollback()
            conflicts += 1
    results.put((performed, conflicts, time.perf_counter() - began))
    s.close()
    engine.dispose()


def replay(engine: sa.Engine) -> tuple[int, list[str]]:
    """(records, problems): every row's history must chain from DRAFT to its
    current state."""
    from flask_statemgr.tables import history_table as h

    problems = []
    with engine.connect() as conn:
        finals = dict(conn.execute(sa.select(Document.id, Document._state)).all())
        records = conn.execute(
            sa.select(h.c.object_id, h.c.source, h.c.target).where(h.c.model == "Document").order_by(h.c.id)
        ).all()
    upper = {state: name.upper() for state, name in NAMES.items()}
    current = {ident: upper[DRAFT] for ident in finals}
    for object_id, source, target in records:
        ident = int(object_id)
        if current[ident] != source:
            problems.append(f"row {ident}: {source}->{target} recorded while it was {current[ident]}")
        current[ident] = target
    for ident, state in finals.items():
        if current[ident] != upper[state]:
            problems.append(f"row {ident}: history ends in {current[ident]}, the row is {upper[state]}")
    return len(records), problems


def run(report: Report) -> None:
    seconds = 3.0 if quick() else 10.0
    with postgres_schema() as (url, _):
        engine = engine_for(url)
        insert_documents(engine, [(DRAFT, f"Document {i}") for i in range(ROWS)])
        context = multiprocessing.get_context("spawn")
        start = context.Event()
        results = context.Queue()
        processes = [
            context.Process(target=worker, args=(url, seed, seconds, start, results)) for seed in range(WORKERS)
        ]
        for p in processes:
            p.start()
        time.sleep(2)  # let every process import before the clock starts
        start.set()
        outcomes = [results.get(timeout=seconds + 120) for _ in processes]
        for p in processes:
            p.join()
        records, problems = replay(engine)
        engine.dispose()
    performed = sum(o[0] for o in outcomes)
    conflicts = sum(o[1] for o in outcomes)
    elapsed = max(o[2] for o in outcomes)
    report.rate("performed", "transitions committed", "flask_statemgr", performed / elapsed, total=performed)
    report.rate(
        "conflicts", "conflicts (StateConflict, rolled back)", "flask_statemgr", conflicts / elapsed, total=conflicts
    )
    report.check(
        "no transition applied twice (history replay)",
        not problems and records == performed,
        f"{performed} performed, {records} records, {len(problems)} broken chains"
        + (f" (first: {problems[0]})" if problems else ""),
    )
    report.note(f"{WORKERS} processes, {ROWS} rows, {elapsed:.1f} s.")
