"""``GET {prefix}/events/stream``: the events feed as Server-Sent Events
(DESIGN §6), served in-process by Flask's test client."""

from __future__ import annotations

import json
import threading
import typing as t
import uuid

import pytest
from reliability_app import ALICE, BOB, CAROL, Population, seed

STREAM = "/_statemgr/events/stream"
#: what a threaded server (gthread, Werkzeug's) tells the app
THREADED = {"wsgi.multithread": True}


class Stream:
    """The events of an open stream, read as they come."""

    def __init__(self, response: t.Any) -> None:
        self.response = response
        self._chunks = iter(response.response)
        self.comments: list[str] = []
        self.fields: list[dict[str, str]] = []

    def next_event(self) -> dict[str, str]:
        """The next message with data (keep-alives are counted, not returned)."""
        while True:
            chunk = next(self._chunks).decode()
            fields = dict(line.split(": ", 1) for line in chunk.strip().split("\n") if not line.startswith(":"))
            self.comments += [line for line in chunk.split("\n") if line.startswith(":")]
            self.fields.append(fields)
            if "data" in fields:
                return fields

    def events(self, count: int) -> list[dict[str, t.Any]]:
        return [{**json.loads(e["data"]), "sse_id": e["id"]} for e in (self.next_event() for _ in range(count))]


def open_stream(app: t.Any, user: str | None, **headers: str) -> Stream:
    query = headers.pop("query", "")
    response = app.test_client().get(
        f"{STREAM}{query}",
        headers={**({"X-User": user} if user else {}), **headers},
        buffered=False,
        environ_overrides=THREADED,
    )
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "text/event-stream"
    return Stream(response)


def archive(app: t.Any, document: int, user: str) -> int:
    response = app.test_client().post(
        f"/_statemgr/objects/document/{document}/state/archive", json={}, headers={"X-User": user}
    )
    assert response.status_code == 200, response.get_json()
    return int(response.get_json()["result"]["record"]["id"])


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)])
def broker(request: pytest.FixtureRequest) -> dict[str, t.Any]:
    """The stream's config: announced by the database (PostgreSQL's NOTIFY,
    or SQLite's table watched) or by Redis; a channel of this test's own."""
    config: dict[str, t.Any] = {"STATEMGR_EVENTS_CHANNEL": f"statemgr_test_{uuid.uuid4().hex}"}
    if request.param == "redis":
        config["STATEMGR_EVENTS_BROKER"] = request.getfixturevalue("redis_url")
    return config


def test_the_stream_replays_then_pushes_then_resumes(
    reliability: t.Callable[..., t.Any], broker: dict[str, t.Any], caplog: pytest.LogCaptureFixture
) -> None:
    app = reliability(**broker)
    with app.app_context():
        # folder 2 is private to bob: carol never hears of document 2
        seed(
            Population(owners=[ALICE.id, BOB.id], documents=[(0, CAROL.id), (1, BOB.id), (0, CAROL.id), (0, CAROL.id)]),
            private={1},
        )
    start = app.test_client().get("/_statemgr/events").get_json()["cursor"]
    first = archive(app, 1, "carol")
    archive(app, 2, "bob")
    stream = open_stream(app, "carol", query=f"?after={start}")
    (replayed,) = stream.events(1)
    assert replayed["id"] == first and replayed["sse_id"] == replayed["cursor"]
    # pushed: performed while the stream waits
    pushed: list[int] = []
    writer = threading.Timer(0.2, lambda: pushed.append(archive(app, 3, "carol")))
    writer.start()
    (event,) = stream.events(1)
    writer.join()
    assert event["id"] == pushed[0] and event["object_id"] == "3"
    # it came before the first heartbeat, after which the stream would
    # have read the table anyway: it was woken
    assert stream.comments == []
    stream.response.close()
    # a new connection with Last-Event-ID continues after it
    fourth = archive(app, 4, "carol")
    again = open_stream(app, "carol", **{"Last-Event-ID": event["sse_id"], "query": f"?after={start}"})
    assert [e["id"] for e in again.events(1)] == [fourth]
    again.response.close()
    # a failing listener wakes its streams as it reconnects, which would
    # pass for a push
    assert [r.getMessage() for r in caplog.records if r.name == "flask_statemgr.stream"] == []


def test_the_stream_says_retry_and_keeps_alive(reliability: t.Callable[..., t.Any], broker: dict[str, t.Any]) -> None:
    app = reliability(**broker, STATEMGR_EVENTS_RETRY=2500, STATEMGR_EVENTS_HEARTBEAT=0.2)
    stream = open_stream(app, "alice")
    assert next(stream._chunks) == b"retry: 2500\n\n"
    assert next(stream._chunks) == b": keep-alive\n\n"
    stream.response.close()


def test_over_the_cap_is_a_503_and_a_closed_stream_frees_its_place(reliability: t.Callable[..., t.Any]) -> None:
    app = reliability(STATEMGR_EVENTS_STREAMS=1, STATEMGR_EVENTS_HEARTBEAT=0.2)
    stream = open_stream(app, "alice")
    next(stream._chunks)
    refused = app.test_client().get(STREAM, environ_overrides=THREADED)
    assert refused.status_code == 503
    assert refused.mimetype == "application/problem+json"
    assert refused.headers["Retry-After"]
    stream.response.close()
    open_stream(app, "alice").response.close()


def test_a_server_that_cannot_hold_streams_answers_503(reliability: t.Callable[..., t.Any]) -> None:
    """A sync worker (no threads, no gevent) would block on one stream."""
    refused = reliability().test_client().get(STREAM)
    assert refused.status_code == 503
    assert "poll" in refused.get_json()["detail"]


@pytest.mark.parametrize("cursor", ["x", "1.2.3", "-4"])
def test_a_bad_last_event_id_is_a_400(reliability: t.Callable[..., t.Any], cursor: str) -> None:
    response = reliability().test_client().get(STREAM, headers={"Last-Event-ID": cursor}, environ_overrides=THREADED)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_only_committed_records_are_announced(reliability: t.Callable[..., t.Any], postgres_url: str) -> None:
    """The NOTIFY goes out inside the writing transaction: a rolled-back
    perform announces nothing, a committed one once."""
    import psycopg
    from reliability_app import Document, db
    from sqlalchemy import orm

    channel = f"statemgr_test_{uuid.uuid4().hex}"
    app = reliability(STATEMGR_EVENTS_CHANNEL=channel)
    with app.app_context():
        seed(Population(owners=[ALICE.id], documents=[(0, ALICE.id)]))
    with psycopg.connect(postgres_url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as listener:
        listener.execute(f'LISTEN "{channel}"')
        with app.app_context(), orm.Session(db.engine) as session:
            session.get(Document, 1).state.archive(user=ALICE)
            session.rollback()
            assert list(listener.notifies(timeout=0.5)) == []
            session.get(Document, 1).state.archive(user=ALICE)
            session.commit()
        assert [n.channel for n in listener.notifies(timeout=2, stop_after=2)] == [channel]


def test_a_stream_never_read_frees_its_place(reliability: t.Callable[..., t.Any]) -> None:
    """A HEAD (or a client gone before the first byte) opens no stream for
    good: the cap is not used up by requests whose body is never sent."""
    app = reliability(STATEMGR_EVENTS_STREAMS=1, STATEMGR_EVENTS_HEARTBEAT=0.2)
    for _ in range(3):
        head = app.test_client().head(STREAM, environ_overrides=THREADED)
        assert head.status_code == 200
        head.close()
    open_stream(app, "alice").response.close()


class Listening(threading.Thread):
    """A stream opened, read and closed in a thread of its own (as a server
    serves each in its own): ``ready`` once it waits, after its first read;
    then it reads one event and closes."""

    def __init__(self, app: t.Any, user: str | None) -> None:
        super().__init__()
        self.app, self.user = app, user
        self.ready = threading.Event()
        self.events: list[dict[str, t.Any]] = []
        self.start()
        assert self.ready.wait(30)

    def run(self) -> None:
        stream = open_stream(self.app, self.user)
        try:
            # retry, then a keep-alive: the stream has read and waits
            assert next(stream._chunks).startswith(b"retry:")
            assert next(stream._chunks) == b": keep-alive\n\n"
            self.ready.set()
            self.events = stream.events(1)
        finally:
            stream.response.close()


def _statements_until_delivered(app: t.Any, users: list[str | None], document: int) -> list[str]:
    """The statements sent outside the hub's own threads (by the writer's
    request and by every stream) from archiving ``document`` until each of
    the streams of ``users`` had it."""
    from reliability_app import db
    from sqlalchemy import event

    sent: list[str] = []

    def record(conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        if not threading.current_thread().name.startswith("statemgr-events"):
            sent.append(statement)

    streams = [Listening(app, user) for user in users]
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        record_id = archive(app, document, "carol")
        for stream in streams:
            stream.join(30)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [[e["id"] for e in stream.events] for stream in streams] == [[record_id]] * len(users)
    return sent


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_change_costs_the_same_statements_for_one_stream_or_many(reliability: t.Callable[..., t.Any]) -> None:
    """The hub reads the new record once (in its own thread) and its object
    is loaded once for all streams, with the folder its ``can_view`` asks
    for; each stream filters what the hub read. On SQLite nothing is held
    back, so no read is repeated by chance."""
    app = reliability(STATEMGR_EVENTS_HEARTBEAT=0.2)
    with app.app_context():
        seed(Population(owners=[ALICE.id], documents=[(0, CAROL.id), (0, CAROL.id)]))
    one = _statements_until_delivered(app, ["carol"], 1)
    many = _statements_until_delivered(app, ["carol", "alice", "bob", None, "carol", "alice", None], 2)
    assert len(many) == len(one), (one, many)
    # the writer's request loads the document once, the streams once more
    assert sum(s.startswith("SELECT rel_document") and "IN (" in s for s in many) == 1


def test_streams_woken_together_each_see_only_what_their_user_may(reliability: t.Callable[..., t.Any]) -> None:
    """The objects are shared by the streams of a wake-up, the decisions are
    each viewer's: carol's stream skips bob's private document that bob's
    stream shows, and shows her own next change."""
    app = reliability(STATEMGR_EVENTS_HEARTBEAT=0.2)
    with app.app_context():
        seed(Population(owners=[ALICE.id, BOB.id], documents=[(0, CAROL.id), (1, BOB.id)]), private={1})
    bob, carol = Listening(app, "bob"), Listening(app, "carol")
    hidden = archive(app, 2, "bob")
    bob.join(30)
    shown = archive(app, 1, "carol")
    carol.join(30)
    assert [e["id"] for e in bob.events] == [hidden]
    assert [e["id"] for e in carol.events] == [shown]
