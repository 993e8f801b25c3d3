"""Faults: whatever fails inside a transition rolls back all of it (state
columns, columns the hooks changed, history records, blobs) and sends
``transition_failed``; a raising ``transition_after`` receiver is logged and
the transition stands; a worker killed or cut off from PostgreSQL in the
middle of a transition leaves nothing half-applied; an unreachable store is
a clean 503; a deadlock between two transitions is a 409 for one of them.

Most faults are triggered through the JSON API of tests/reliability_app.py,
whose app answers unhandled errors with 500 as in production. What the
database holds is read in a transaction of its own, so only committed data
counts.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from feed import settled
from flask import Flask
from reliability_app import (
    ALICE,
    Document,
    DocumentState,
    Folder,
    FolderState,
    Population,
    User,
    call,
    db,
    free_port,
    gunicorn,
    seed,
)

from flask_statemgr import StateConflict, transition_after, transition_before, transition_failed
from flask_statemgr.exceptions import StoreUnavailable
from flask_statemgr.store import MemoryBackend

#: STATEMGR_STORE_MIN_SIZE: a payload field this big goes to the store
MIN_SIZE = 64
#: a payload value that must go to the store
NOTE = "a note long enough to be stored as a blob " * 4
#: folder 1 holds documents 1 to 3, all alice's (a cascade needs the roles
#: for every step)
POPULATION = Population(owners=[ALICE.id], documents=[(0, ALICE.id)] * 3)
ARCHIVE_FOLDER = "/_statemgr/objects/folder/1/state/archive"
#: archiving the folder cascades to its three documents
CASCADE_BODY = {"note": NOTE, "confirm": True}
#: seconds a test waits for a served request to reach the gate
PATIENCE = 30


Snapshot = t.Callable[[Flask], dict[str, t.Any]]


def read(app: Flask, path: str) -> t.Any:
    """``GET /_statemgr/objects/<path>`` as alice."""
    response = app.test_client().get(f"/_statemgr/objects/{path}", headers={"X-User": ALICE.name})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def states(app: Flask) -> list[str]:
    """The states of folder 1 and documents 1 to 3."""
    paths = ["folder/1", *(f"document/{i}" for i in (1, 2, 3))]
    return [read(app, path)["managers"]["state"]["state"] for path in paths]


def counts(snapshot: Snapshot, app: Flask) -> tuple[int, int]:
    """How many history records and blobs are committed."""
    taken = snapshot(app)
    return taken["statemgr_history"], taken["statemgr_blob"]


def seeded(app: Flask, **faults: str) -> None:
    """Seed :data:`POPULATION`; ``faults`` sets documents' ``fault``
    (``doc3="raise"``)."""
    with app.app_context():
        seed(POPULATION)
        for name, fault in faults.items():
            db.session.get_one(Document, int(name.removeprefix("doc"))).fault = fault
        db.session.commit()


def post(app: Flask, path: str, user: User, body: dict[str, t.Any]) -> t.Any:
    return app.test_client().post(path, json=body, headers={"X-User": user.name})


class Failures:
    """Records what ``transition_failed`` is sent with while connected."""

    def __init__(self) -> None:
        self.sent: list[tuple[t.Any, BaseException]] = []

    def __call__(self, sender: t.Any, *, exception: BaseException, **kwargs: t.Any) -> None:
        self.sent.append((sender, exception))


@pytest.fixture
def failures() -> t.Iterator[Failures]:
    failures = Failures()
    with transition_failed.connected_to(failures):
        yield failures


def assert_problem(response: t.Any, status: int) -> dict[str, t.Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, t.Any] = response.get_json()
    assert body["status"] == status
    return body


def test_failing_execute_hook_rolls_back(reliability: t.Any, snapshot: Snapshot, failures: Failures) -> None:
    app = reliability(STATEMGR_STORE_MIN_SIZE=MIN_SIZE)
    seeded(app, doc1="raise")
    before = snapshot(app)
    response = post(app, "/_statemgr/objects/document/1/state/archive", ALICE, {"note": NOTE})
    assert_problem(response, 500)
    assert snapshot(app) == before
    [(sender, error)] = failures.sent
    assert sender is DocumentState.archive
    assert isinstance(error, RuntimeError)


def test_failing_hook_mid_cascade_rolls_back_every_step(
    reliability: t.Any, snapshot: Snapshot, failures: Failures
) -> None:
    # By the time document 3's hook raises, the folder's state, its record
    # and the note's blob are written and documents 1 and 2 counted an
    # archive: all of it must go.
    app = reliability(STATEMGR_STORE_MIN_SIZE=MIN_SIZE)
    seeded(app, doc3="raise")
    before = snapshot(app)
    assert_problem(post(app, ARCHIVE_FOLDER, ALICE, CASCADE_BODY), 500)
    assert snapshot(app) == before
    [(sender, error)] = failures.sent
    assert sender is FolderState.archive
    assert "document 3" in str(error)


@pytest.mark.parametrize("sender", [FolderState.archive, DocumentState.archive], ids=["root", "child"])
def test_raising_before_receiver_aborts(
    reliability: t.Any, snapshot: Snapshot, failures: Failures, sender: t.Any
) -> None:
    app = reliability(STATEMGR_STORE_MIN_SIZE=MIN_SIZE)
    seeded(app)
    before = snapshot(app)

    def refuse(transition: t.Any, **kwargs: t.Any) -> None:
        raise LookupError(f"{transition.name} of {kwargs['obj']} refused by a receiver")

    with transition_before.connected_to(refuse, sender=sender):
        assert_problem(post(app, ARCHIVE_FOLDER, ALICE, CASCADE_BODY), 500)
    assert snapshot(app) == before
    [(_, error)] = failures.sent
    assert isinstance(error, LookupError)


class BrokenBackend(MemoryBackend):
    """A store that reads but cannot write."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def write(self, key: str, data: bytes, *, session: t.Any = None) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status"),
    [(StoreUnavailable("the store is down"), 503), (OSError(28, "No space left on device"), 500)],
    ids=["unavailable", "disk-full"],
)
def test_failing_store_rolls_back(
    reliability: t.Any, snapshot: Snapshot, failures: Failures, error: Exception, status: int
) -> None:
    # The payload goes to the store after the folder's state changed.
    backend = BrokenBackend(error)
    app = reliability(STATEMGR_STORE=backend, STATEMGR_STORE_MIN_SIZE=MIN_SIZE)
    seeded(app)
    before = snapshot(app)
    assert_problem(post(app, ARCHIVE_FOLDER, ALICE, CASCADE_BODY), status)
    assert snapshot(app) == before
    assert list(backend.scan()) == []
    assert [e for _, e in failures.sent] == [error]


def _raise_python_error(**kwargs: t.Any) -> None:
    raise ValueError("a receiver bug")


def _raise_database_error(**kwargs: t.Any) -> None:
    # a statement the database refuses: on PostgreSQL it would abort the
    # whole transaction, the transition with it, unless contained
    db.session.execute(sa.insert(Folder.__table__).values(id=1, owner_id=1, _state=1, private=False, name=""))


@pytest.mark.parametrize("receiver", [_raise_python_error, _raise_database_error], ids=["python", "database"])
def test_raising_after_receiver_is_logged_and_the_transition_stands(
    reliability: t.Any,
    snapshot: Snapshot,
    failures: Failures,
    caplog: pytest.LogCaptureFixture,
    receiver: t.Callable[..., None],
) -> None:
    app = reliability(STATEMGR_STORE_MIN_SIZE=MIN_SIZE)
    seeded(app)

    def broken(sender: t.Any, **kwargs: t.Any) -> None:
        receiver(**kwargs)

    with (
        caplog.at_level(logging.ERROR, logger="flask_statemgr"),
        transition_after.connected_to(broken, sender=DocumentState.submit),
    ):
        response = post(app, "/_statemgr/objects/document/1/state/submit", ALICE, {"summary": NOTE, "pages": 7})
    assert response.status_code == 200, response.get_data(as_text=True)
    answered = response.get_json()["result"]["record"]
    assert states(app) == ["OPEN", "REVIEW", "DRAFT", "DRAFT"]
    [record] = read(app, "document/1/history")["records"]
    assert (record["id"], record["payload"]) == (answered["id"], {"summary": NOTE, "pages": 7})
    assert counts(snapshot, app) == (1, 1)
    [logged] = [r for r in caplog.records if r.name == "flask_statemgr"]
    assert "transition-after" in logged.getMessage()
    assert logged.exc_info is not None
    assert failures.sent == []


def unavailable_without_address(response: t.Any, port: int, caplog: pytest.LogCaptureFixture) -> None:
    """A 503 that says the store is unavailable and where only in the log."""
    detail = assert_problem(response, 503)["detail"]
    assert detail == "The payload store is unavailable; try again later"
    logged = [r.getMessage() for r in caplog.records if r.name == "flask_statemgr.store" and r.levelno == logging.ERROR]
    assert logged and all(f"127.0.0.1:{port}" in m for m in logged), logged


def test_unreachable_redis_store_is_503_and_commits_nothing(
    reliability: t.Any, snapshot: Snapshot, failures: Failures, caplog: pytest.LogCaptureFixture
) -> None:
    # nothing listens on a port just freed
    port = free_port()
    app = reliability(STATEMGR_STORE=f"redis://127.0.0.1:{port}/0", STATEMGR_STORE_MIN_SIZE=MIN_SIZE)
    seeded(app)
    before = snapshot(app)
    with caplog.at_level(logging.ERROR, logger="flask_statemgr.store"):
        response = post(app, "/_statemgr/objects/document/1/state/submit", ALICE, {"summary": NOTE})
    unavailable_without_address(response, port, caplog)
    assert snapshot(app) == before
    [(_, error)] = failures.sent
    assert isinstance(error, StoreUnavailable)
    # a payload small enough to stay inline never needs the store
    small = post(app, "/_statemgr/objects/document/2/state/submit", ALICE, {"summary": "short"})
    assert small.status_code == 200, small.get_data(as_text=True)
    assert states(app) == ["OPEN", "DRAFT", "REVIEW", "DRAFT"]


def test_unreachable_store_on_reading_history_is_503(reliability: t.Any, caplog: pytest.LogCaptureFixture) -> None:
    # another app, whose store works, made a record whose payload is a blob
    writer = reliability(STATEMGR_STORE="memory", STATEMGR_STORE_MIN_SIZE=MIN_SIZE)
    seeded(writer)
    assert post(writer, "/_statemgr/objects/document/1/state/submit", ALICE, {"summary": NOTE}).status_code == 200
    port = free_port()
    reader = reliability(STATEMGR_STORE=f"redis://127.0.0.1:{port}/0", STATEMGR_STORE_MIN_SIZE=MIN_SIZE)
    with caplog.at_level(logging.ERROR, logger="flask_statemgr.store"):
        history = reader.test_client().get("/_statemgr/objects/document/1/history", headers={"X-User": ALICE.name})
    unavailable_without_address(history, port, caplog)
    # what needs no payload is served as usual
    assert read(reader, "document/1")["managers"]["state"]["state"] == "REVIEW"
    events = settled(reader.test_client(), "/_statemgr/events?after=0", {"X-User": ALICE.name})
    assert [e["transition"] for e in events["events"]] == ["submit"]


# -- a served app, on PostgreSQL ---------------------------------------------------


def wait_for(path: Path) -> str:
    """The contents of ``path`` once a worker wrote it."""
    deadline = time.monotonic() + PATIENCE
    while not path.exists() or not path.read_text():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no request reached the gate ({path.name})")
        time.sleep(0.02)
    return path.read_text()


def in_open_transaction(app: Flask, backend: int) -> bool:
    """Whether PostgreSQL backend ``backend`` sits in a transaction that
    has written something (it has a transaction id) and not committed."""
    with app.app_context(), db.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT state, backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = :pid"),
            {"pid": backend},
        ).one()
    return bool(row[0] == "idle in transaction" and row[1])


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    """A closed gate for :func:`reliability_app.wait_at_gate`."""
    folder = tmp_path / "gate"
    folder.mkdir()
    (folder / "closed").touch()
    return folder


@dataclasses.dataclass
class MidTransition:
    app: Flask
    gate: Path
    #: what the database held before
    before: dict[str, t.Any]
    #: the served app's base URL
    base: str
    #: the answer to archiving the folder
    pending: Future[tuple[int, str, t.Any]]
    #: the gunicorn worker serving it
    worker: int
    #: the PostgreSQL backend holding its transaction
    backend: int


@pytest.fixture
def mid_transition(reliability: t.Any, snapshot: Snapshot, database_url: str, gate: Path) -> t.Iterator[MidTransition]:
    """One gunicorn worker archiving the folder, stopped in document 3's
    hook: the folder's new state, its record and the note's blob are
    written and not committed."""
    app = reliability()
    seeded(app, doc3="wait")
    before = snapshot(app)
    environ = {"RELIABILITY_GATE": str(gate), "STATEMGR_STORE_MIN_SIZE": str(MIN_SIZE)}
    with gunicorn(database_url, workers=1, **environ) as base, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(call, base, ARCHIVE_FOLDER, ALICE, CASCADE_BODY)
        backend = int(wait_for(gate / "backend"))
        worker = int(wait_for(gate / "entered"))
        assert in_open_transaction(app, backend)
        yield MidTransition(app, gate, before, base, pending, worker, backend)


def assert_folder_archived(app: Flask, snapshot: Snapshot) -> None:
    """The folder's archive is committed in full, once."""
    assert states(app) == ["ARCHIVED"] * 4
    [record] = read(app, "folder/1/history")["records"]
    assert record["payload"] == {"note": NOTE}
    assert counts(snapshot, app) == (4, 1)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_worker_killed_mid_transition_leaves_nothing(mid_transition: MidTransition, snapshot: Snapshot) -> None:
    os.kill(mid_transition.worker, signal.SIGKILL)
    with pytest.raises((ConnectionError, OSError)):
        mid_transition.pending.result(PATIENCE)
    assert snapshot(mid_transition.app) == mid_transition.before
    # gunicorn's new worker performs the same transition in full
    (mid_transition.gate / "closed").unlink()
    status, _, body = call(mid_transition.base, ARCHIVE_FOLDER, ALICE, CASCADE_BODY)
    assert status == 200, body
    assert int((mid_transition.gate / "entered").read_text()) != mid_transition.worker
    assert_folder_archived(mid_transition.app, snapshot)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_terminated_backend_is_503_and_the_pool_recovers(mid_transition: MidTransition, snapshot: Snapshot) -> None:
    app = mid_transition.app
    with app.app_context(), db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.pg_terminate_backend(mid_transition.backend))).scalar_one()
    (mid_transition.gate / "closed").unlink()
    status, ctype, body = mid_transition.pending.result(PATIENCE)
    assert (status, ctype) == (503, "application/problem+json"), body
    assert body["status"] == 503
    assert snapshot(app) == mid_transition.before
    # the same worker (one pool) performs the same transition in full
    status, _, body = call(mid_transition.base, ARCHIVE_FOLDER, ALICE, CASCADE_BODY)
    assert status == 200, body
    assert int((mid_transition.gate / "entered").read_text()) == mid_transition.worker
    assert_folder_archived(app, snapshot)


def blocked_by(app: Flask, backend: int) -> bool:
    """Whether some PostgreSQL backend waits for a lock ``backend`` holds."""
    with app.app_context(), db.engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"),
                {"pid": backend},
            ).scalar_one()
        )


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_deadlock_between_two_transitions_is_a_conflict(
    reliability: t.Any, snapshot: Snapshot, failures: Failures, gate: Path
) -> None:
    """A archives the folder and stops in document 3's hook, holding the
    note's new blob; B archives document 1 with the same note, so it holds
    document 1 and waits for the blob; A then updates document 1: a
    deadlock, which PostgreSQL breaks by failing one of them. The loser is
    told of a concurrent change (409), as with any other, and nothing of it
    stays."""
    app = reliability(STATEMGR_STORE_MIN_SIZE=MIN_SIZE, RELIABILITY_GATE=str(gate))
    seeded(app, doc3="wait")
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, app, ARCHIVE_FOLDER, ALICE, CASCADE_BODY)
        holder = int(wait_for(gate / "backend"))
        second = pool.submit(post, app, "/_statemgr/objects/document/1/state/archive", ALICE, {"note": NOTE})
        deadline = time.monotonic() + PATIENCE
        while not blocked_by(app, holder):
            assert time.monotonic() < deadline, "the second transition never waited for the first"
            time.sleep(0.02)
        (gate / "closed").unlink()
        responses = [first.result(PATIENCE), second.result(PATIENCE)]
    assert sorted(r.status_code for r in responses) == [200, 409]
    [loser] = [r for r in responses if r.status_code == 409]
    assert assert_problem(loser, 409)["reasons"][0]["code"] == "state"
    [(_, error)] = failures.sent
    assert isinstance(error, StateConflict)
    if responses[0].status_code == 200:
        assert_folder_archived(app, snapshot)
    else:
        assert states(app) == ["OPEN", "ARCHIVED", "DRAFT", "DRAFT"]
        assert counts(snapshot, app) == (1, 1)
