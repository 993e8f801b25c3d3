"""6. HTTP: the example app (``example_app``) under gunicorn (2 sync
workers) on PostgreSQL, loaded from a second process on 127.0.0.1 for a
bounded time, as a signed-in editor (Eddie): the session cookie and the
CSRF token the app gave at sign-in, sent with every request as a browser
sends them.

- POST perform: ``/_statemgr/objects/project/<n>/state/publish`` with a
  ``publish_at``, each request on a fresh approved draft (the answer is the
  object JSON plus the result);
- POST bare: the same change written by hand in a route the benchmark adds
  (``bench/http_app.py``), answering the whole object as the API does (its
  fields, states, and which transitions the user may perform now);
- GET object state, cycling over 100 projects;
- GET schema, 200 (the body) and 304 (``If-None-Match``);
- GET a trivial route returning ``ok``, also added by the benchmark.
"""

from __future__ import annotations

import contextlib
import datetime
import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import typing as t
import urllib.parse
import urllib.request
from pathlib import Path

import sqlalchemy as sa

from . import loadgen
from .databases import postgres_schema
from .harness import quick
from .report import Report

TITLE = "HTTP under gunicorn (2 workers) on PostgreSQL"
ROOT = Path(__file__).resolve().parent.parent
#: projects 1000..1099 are read; each POST load consumes fresh drafts from
#: its own range of POST_ROWS (one per request)
READ_FIRST, READS = 1_000, 100
POST_ROWS = 100_000
POST_FIRST = {"ours": 10_000, "bare": 10_000 + POST_ROWS}
CONNECTIONS = 4
ACTING_USER = "Eddie"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(url: str) -> sa.Engine:
    """The example app's tables and demo data (its factory creates them,
    once, before the workers start), and the approved drafts the loads
    read and publish."""
    from example_app import create_app
    from example_app.models import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO projects (id, title, summary, owner_id, created_at, _state, _review) "
                "SELECT g, 'Project ' || g, 'A summary.', (SELECT id FROM users WHERE role = 'owner'), "
                "now() AT TIME ZONE 'utc', 1, 'approved' FROM generate_series(:first, :last) AS g "
                "WHERE g < :first + :reads OR g >= :posts"
            ),
            {
                "first": READ_FIRST,
                "last": POST_FIRST["bare"] + POST_ROWS - 1,
                "reads": READS,
                "posts": POST_FIRST["ours"],
            },
        )
    return engine


@contextlib.contextmanager
def gunicorn(database_url: str) -> t.Iterator[int]:
    port = free_port()
    env = dict(os.environ, DATABASE_URL=database_url, SECRET_KEY=secrets.token_hex(16))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench.http_app:create_app()",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/trivial", timeout=1).read()
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


def sign_in(port: int, name: str) -> tuple[str, str]:
    """Sign in through the app's own switcher form, as a browser does:
    (the ``Cookie`` header to send, the CSRF token of the page's meta tag)."""
    base = f"http://127.0.0.1:{port}"
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    # switch on a live project's page: signed in, the index would list
    # every project of the pool
    live = re.search(r'href="(/projects/\d+)"', browser.open(f"{base}/").read().decode())
    if live is None:
        raise RuntimeError("the example app's index shows no live project")
    page_url = f"{base}{live[1]}"
    page = browser.open(page_url).read().decode()
    user = re.search(rf'<option value="(\d+)"[^>]*>{name} \(', page)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    if user is None or token is None:
        raise RuntimeError("the example app's page has no sign-in form or CSRF token")
    form = urllib.parse.urlencode({"user_id": user[1], "csrf_token": token[1]}).encode()
    # the switcher sends the user back to the page it was used on
    back = urllib.request.Request(f"{base}/login", form, headers={"Referer": page_url})
    page = browser.open(back).read().decode()
    if not re.search(rf'<option value="{user[1]}" selected>', page):
        raise RuntimeError(f"signing in as {name} failed")
    return "; ".join(f"{c.name}={c.value}" for c in jar), token[1]


def published(engine: sa.Engine, first: int, rows: int) -> tuple[int, int]:
    """(projects published in ``first`` .. ``first + rows - 1``, those of
    them with exactly one publish record)."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT count(*), count(*) FILTER (WHERE records = 1) FROM ("
                " SELECT (SELECT count(*) FROM statemgr_history h WHERE h.model = 'Project'"
                "  AND h.transition = 'publish' AND h.object_id = p.id::text) AS records"
                " FROM projects p WHERE p.id BETWEEN :first AND :last AND p._state = 2) AS done"
            ),
            {"first": first, "last": first + rows - 1},
        ).one()
    return int(row[0]), int(row[1])


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
        engine = prepare(url)
        with gunicorn(url) as port:
            cookie, token = sign_in(port, ACTING_USER)
            browser = {"Cookie": cookie}
            etag = urllib.request.urlopen(
                urllib.request.Request(f"http://127.0.0.1:{port}/_statemgr/schema", headers=browser)
            ).headers["ETag"]
            yesterday = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
            post_headers = dict(browser, **{"Content-Type": "application/json", "X-CSRFToken": token})
            # RFC 3339, as the form's schema says
            post_body = json.dumps({"publish_at": yesterday.strftime("%Y-%m-%dT%H:%M:00Z")})
            loads = {
                "ours": (
                    "POST perform (JSON API)",
                    loadgen.Load(
                        "POST", "/_statemgr/objects/project/{n}/state/publish", headers=post_headers, body=post_body
                    ),
                ),
                "bare": (
                    "POST bare Flask view, same change",
                    loadgen.Load("POST", "/bench/bare/projects/{n}/publish", headers=post_headers, body=post_body),
                ),
                "object": (
                    "GET object state",
                    loadgen.Load("GET", "/_statemgr/objects/project/{n}", READ_FIRST, READS, browser),
                ),
                "schema-200": ("GET schema (200)", loadgen.Load("GET", "/_statemgr/schema", headers=browser)),
                "schema-304": (
                    "GET schema (304, If-None-Match)",
                    loadgen.Load("GET", "/_statemgr/schema", headers=dict(browser, **{"If-None-Match": etag})),
                ),
                "trivial": ("GET trivial route", loadgen.Load("GET", "/bench/trivial", headers=browser)),
            }
            next_row = dict(POST_FIRST)
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
        done = {key: published(engine, first, POST_ROWS) for key, first in POST_FIRST.items()}
        engine.dispose()
    for key, (label, _) in loads.items():
        slices = outcomes[key]
        report.rate(
            key,
            label,
            "Flask" if key in ("bare", "trivial") else "flask_statemgr",
            statistics.median(o.per_second for o in slices),
            p50_ms=statistics.median(o.p50_ms for o in slices),
            p99_ms=statistics.median(o.p99_ms for o in slices),
            requests=sum(o.requests for o in slices),
            errors=sum(o.errors for o in slices),
        )
    # a request in flight when a slice ends is performed but not counted
    in_flight = CONNECTIONS * (repeats + 1)
    errors = sum(report.figure(k).extra["errors"] for k in loads)
    rows, recorded = done["ours"]
    report.check(
        "POST perform: one published row and one history record per answered request",
        sent["ours"] <= rows <= sent["ours"] + in_flight and recorded == rows and errors == 0,
        f"{sent['ours']} answered, {rows} rows published, {recorded} of them with one "
        f"record; {errors} errors in all loads",
    )
    bare_rows, _ = done["bare"]
    report.check(
        "POST bare: one published row per answered request",
        sent["bare"] <= bare_rows <= sent["bare"] + in_flight,
        f"{sent['bare']} answered, {bare_rows} rows published",
    )
    report.compare("POST perform, >= 0.6x bare endpoint", "ours", "bare", minimum=0.6)
    report.compare("GET schema 304, >= 0.9x trivial route", "schema-304", "trivial", minimum=0.9)
    report.compare("GET object state vs trivial route", "object", "trivial")
    report.note(
        f"the example app, signed in as {ACTING_USER} (editor) with its session cookie, and its "
        "CSRF token on POST; every request passes the app's hooks (the user loaded from the "
        "session, Flask-WTF's CSRF check on POST). "
        f"load: {outcomes['ours'][0].tool}, {CONNECTIONS} connections, endpoints taking turns in "
        f"{repeats} slices of {slice_seconds:.0f} s after {warmup:.0f} s of warm-up each; rate, p50 "
        "and p99 = the median over the slices, so one slice disturbed by another process does not "
        "decide; gunicorn's sync workers close each connection. The load generator shares the "
        "machine's CPUs."
    )
