"""6. HTTP: the extension's JSON API under gunicorn (2 sync workers) on
PostgreSQL, loaded from a second process on 127.0.0.1 for a bounded time.

- POST perform: ``/_statemgr/objects/document/<n>/state/publish``, each
  request on a fresh draft (the answer is the object JSON plus the result);
- POST bare: a plain Flask view doing the same change by hand
  (``bench/http_app.py``: load, check state, role and title, assign, commit,
  answer the new state);
- GET object state, cycling over 100 documents;
- GET schema, 200 (the body) and 304 (``If-None-Match``);
- GET a trivial route returning ``ok``. The app is ``bench/http_app.py``
(the example app is not used: its routes and users are its own).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import typing as t
import urllib.request
from pathlib import Path

import sqlalchemy as sa

from . import loadgen
from .databases import engine_for, postgres_schema
from .harness import quick
from .report import Report
from .workload import Document

TITLE = "HTTP under gunicorn (2 workers) on PostgreSQL"
ROOT = Path(__file__).resolve().parent.parent
#: rows each POST load may consume (one per request)
POST_ROWS = 100_000
CONNECTIONS = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def gunicorn(database_url: str) -> t.Iterator[int]:
    port = free_port()
    env = dict(os.environ, BENCH_DATABASE_URL=database_url)
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
            "--log-level", "warning", "bench.http_app:create_app()",
        ],
        cwd=ROOT, env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/trivial", timeout=1).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run(report: Report) -> None:
    # short slices, endpoints taking turns, so a busy moment of the machine
    # hits every endpoint alike
    slice_seconds, repeats, warmup = (1.0, 3, 1.0) if quick() else (1.0, 7, 1.0)
    if not loadgen.have_wrk():
        report.note(
            "wrk is not installed (apt-get install wrk): the load came from "
            "Python threads, which need much of the CPU the server would use."
        )
    with postgres_schema() as (url, _):
        engine = engine_for(url)
        # rows 1..100 for reads, then a range of fresh drafts per POST load
        next_row = {"ours": 1_000, "bare": 1_000 + POST_ROWS}
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO bench_document (id, title, _state) "
                    "SELECT g, 'Document ' || g, 1 FROM generate_series(1, :last) AS g"
                ),
                {"last": 1_000 + 2 * POST_ROWS},
            )
        with gunicorn(url) as port:
            etag = urllib.request.urlopen(f"http://127.0.0.1:{port}/_statemgr/schema").headers["ETag"]
            json_post = {"headers": {"Content-Type": "application/json"}, "body": "{}"}
            loads = {
                "ours": ("POST perform (JSON API)", loadgen.Load("POST", "/_statemgr/objects/document/{n}/state/publish", **json_post)),
                "bare": ("POST bare Flask view, same change", loadgen.Load("POST", "/bare/document/{n}/publish", **json_post)),
                "object": ("GET object state", loadgen.Load("GET", "/_statemgr/objects/document/{n}", 1, 100)),
                "schema-200": ("GET schema (200)", loadgen.Load("GET", "/_statemgr/schema")),
                "schema-304": ("GET schema (304, If-None-Match)", loadgen.Load("GET", "/_statemgr/schema", headers={"If-None-Match": etag})),
                "trivial": ("GET trivial route", loadgen.Load("GET", "/trivial")),
            }
            sent = dict.fromkeys(next_row, 0)

            def go(key: str, seconds: float) -> loadgen.Outcome:
                load = loads[key][1]
                if key in next_row:
                    load.start = next_row[key]
                outcome = loadgen.run(port, load, seconds, CONNECTIONS)
                if key in next_row:
                    # requests still in flight at the end were not counted
                    next_row[key] += outcome.requests + CONNECTIONS + 1
                    sent[key] += outcome.requests
                return outcome

            for key in loads:
                go(key, warmup)
            outcomes: dict[str, list[loadgen.Outcome]] = {key: [] for key in loads}
            for _ in range(repeats):
                for key in loads:
                    outcomes[key].append(go(key, slice_seconds))
        with engine.connect() as conn:
            published = conn.execute(
                sa.select(sa.func.count()).where(Document.state.PUBLISHED, Document.id < 1_000 + POST_ROWS)
            ).scalar() or 0
        engine.dispose()
    for key, (label, _) in loads.items():
        done = outcomes[key]
        report.rate(
            key, label, "Flask" if key in ("bare", "trivial") else "flask_statemgr",
            statistics.median(o.per_second for o in done),
            p50_ms=statistics.median(o.p50_ms for o in done), p99_ms=statistics.median(o.p99_ms for o in done),
            requests=sum(o.requests for o in done), errors=sum(o.errors for o in done),
        )
    slices = repeats + 1
    report.check(
        "POST perform: one published row per answered request",
        sent["ours"] <= published <= sent["ours"] + CONNECTIONS * slices
        and all(report.figure(k).extra["errors"] == 0 for k in loads),
        f"{sent['ours']} answered, {published} rows published, "
        f"{sum(report.figure(k).extra['errors'] for k in loads)} errors in all loads",
    )
    report.compare("POST perform, >= 0.6x bare endpoint", "ours", "bare", minimum=0.6)
    report.compare("GET schema 304, >= 0.9x trivial route", "schema-304", "trivial", minimum=0.9)
    report.compare("GET object state vs trivial route", "object", "trivial")
    report.note(
        f"load: {outcomes['ours'][0].tool}, {CONNECTIONS} connections, endpoints taking turns in "
        f"{repeats} slices of {slice_seconds:.0f} s after {warmup:.0f} s of warm-up each; rate, p50 "
        "and p99 = the median over the slices, so one slice disturbed by another process does not "
        "decide; gunicorn's sync workers close each connection. The load generator shares the "
        "machine's CPUs."
    )
