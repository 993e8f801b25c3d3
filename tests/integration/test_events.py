"""The events feed is complete: every committed record reaches every reader
exactly once, whatever order the writers commit in (DESIGN §6)."""

from __future__ import annotations

import threading
import time
import typing as t
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from feed import settled
from reliability_app import ALICE, BOB, Document, Population, db, seed
from sqlalchemy import orm

EVENTS = "/_statemgr/events"


def drain(client: t.Any, cursor: str, *, limit: int = 100) -> tuple[list[int], str]:
    """Every event after ``cursor`` readable now, and the cursor after them."""
    ids: list[int] = []
    while True:
        body = client.get(f"{EVENTS}?after={cursor}&limit={limit}", headers={"X-User": "alice"}).get_json()
        ids += [e["id"] for e in body["events"]]
        if body["cursor"] == cursor:
            return ids, cursor
        cursor = body["cursor"]


def collect(client: t.Any, cursor: str, count: int, *, limit: int = 100) -> tuple[list[int], str]:
    """At least ``count`` events after ``cursor`` (or what came in 30 s),
    then whatever else is readable. On PostgreSQL a record waits for every
    older write transaction of the server to end, other test runs' too."""
    ids: list[int] = []
    deadline = time.monotonic() + 30
    while len(ids) < count and time.monotonic() < deadline:
        more, cursor = drain(client, cursor, limit=limit)
        ids += more
        if not more:
            time.sleep(0.02)
    more, cursor = drain(client, cursor, limit=limit)
    return ids + more, cursor


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("older", ["lower id", "higher id"])
def test_a_record_committed_after_a_higher_one_is_delivered(reliability: t.Callable[..., t.Any], older: str) -> None:
    """Two writers: the one holding the lower id commits last, and the
    reader has read past the higher id by then. ``older`` names the writer
    whose transaction began writing first. (SQLite cannot interleave them:
    its second writer waits for the first to commit.)"""
    app = reliability()
    with app.app_context():
        seed(Population(owners=[ALICE.id], documents=[(0, ALICE.id), (0, ALICE.id)]))
        client = app.test_client()
        cursor = client.get(EVENTS).get_json()["cursor"]
        with orm.Session(db.engine) as low, orm.Session(db.engine) as high:
            if older == "higher id":
                # the transaction that will insert the higher id starts first
                high.execute(sa.text("SELECT pg_current_xact_id()"))
            first = low.get(Document, 1).state.archive(user=ALICE).record
            second = high.get(Document, 2).state.archive(user=ALICE).record
            assert first.id < second.id
            high.commit()
            # nothing holds the higher id back when its transaction is the
            # older one: it is delivered before the lower id commits
            seen, cursor = collect(client, cursor, 1 if older == "higher id" else 0)
            assert seen == ([second.id] if older == "higher id" else [])
            if older == "lower id":
                # the client hears that a committed record waits
                assert client.get(f"{EVENTS}?after={cursor}", headers={"X-User": "alice"}).get_json()["pending"]
            low.commit()
        later, cursor = collect(client, cursor, 2 - len(seen))
        assert seen + later == [second.id, first.id] if older == "higher id" else [first.id, second.id]
        assert drain(client, cursor)[0] == []


def test_a_bare_record_id_still_works_as_cursor(reliability: t.Callable[..., t.Any]) -> None:
    """``after=<record id>`` (the cursor before it named transactions) reads
    the records above that id, then hands out a cursor."""
    app = reliability()
    with app.app_context():
        seed(Population(owners=[ALICE.id], documents=[(0, ALICE.id)] * 3))
        ids = [db.session.get(Document, i).state.archive(user=ALICE).record.id for i in (1, 2, 3)]
        db.session.commit()
        body = settled(app.test_client(), f"{EVENTS}?after={ids[0]}", {"X-User": "alice"})
        assert [e["id"] for e in body["events"]] == ids[1:]
        assert body["cursor"] == body["events"][-1]["cursor"]
        assert collect(app.test_client(), "0", len(ids))[0] == ids


@pytest.mark.parametrize(
    "after", ["x", "-1", "1.", ".1", "1.2.3", "1e3", "99999999999999999999", "9223372036854775808"]
)
def test_a_bad_cursor_is_a_400(reliability: t.Callable[..., t.Any], after: str) -> None:
    response = reliability().test_client().get(f"{EVENTS}?after={after}")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


WRITERS = 8
PERFORMS = 24  # per writer
POLLERS = 3


def test_concurrent_writers_and_pollers_lose_and_repeat_nothing(reliability: t.Callable[..., t.Any]) -> None:
    """Writers commit in whatever order they finish while pollers page
    through the feed; afterwards every poller has seen every committed
    record exactly once, in no particular order."""
    app = reliability()
    with app.app_context():
        seed(Population(owners=[ALICE.id], documents=[(0, ALICE.id if i % 2 else BOB.id) for i in range(WRITERS * 2)]))
        start = app.test_client().get(EVENTS).get_json()["cursor"]
    done = threading.Event()
    committed: list[int] = []

    def write(writer: int) -> list[int]:
        client = app.test_client()
        ids = []
        for n in range(PERFORMS):
            # two documents a writer, so every perform succeeds
            document = writer * 2 + n % 2 + 1
            user = "alice" if (document - 1) % 2 else "bob"
            transition = "archive" if n % 4 < 2 else "restore"
            path = f"/_statemgr/objects/document/{document}/state/{transition}"
            patience = time.monotonic() + 30
            while True:
                response = client.post(path, json={}, headers={"X-User": user})
                # SQLite refuses a writer that waited too long for another
                if response.status_code != 409 or time.monotonic() > patience:
                    break
                time.sleep(0.02)
            assert response.status_code == 200, response.get_json()
            ids.append(response.get_json()["result"]["record"]["id"])
        return ids

    def poll(_: int) -> list[int]:
        client = app.test_client()
        seen: list[int] = []
        cursor = start
        while not done.is_set():
            # small pages, so a page often ends at a record still in flight
            ids, cursor = drain(client, cursor, limit=3)
            seen += ids
        ids, cursor = collect(client, cursor, len(committed) - len(seen), limit=3)
        return seen + ids

    deadline = time.monotonic() + 120
    with ThreadPoolExecutor(WRITERS + POLLERS) as pool:
        polls = [pool.submit(poll, p) for p in range(POLLERS)]
        writes = [pool.submit(write, w) for w in range(WRITERS)]
        try:
            committed += sorted(i for w in writes for i in w.result(timeout=deadline - time.monotonic()))
        finally:
            done.set()
        seen = [p.result(timeout=deadline - time.monotonic()) for p in polls]
    assert len(committed) == WRITERS * PERFORMS
    for poller in seen:
        assert sorted(poller) == committed
