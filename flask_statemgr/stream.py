"""The events feed pushed as Server-Sent Events (DESIGN §6).

A stream reads the feed from the history table, exactly as ``/events`` does,
and then waits to be woken. What wakes it is never process memory alone:

- on PostgreSQL, a ``NOTIFY`` sent inside the transaction that wrote the
  records, so only committed work is announced;
- with ``STATEMGR_EVENTS_BROKER`` set to a Redis URL, a pub/sub message
  published after that transaction commits;
- on other databases (SQLite, one host), the table itself, watched a few
  times a second.

Each worker process keeps one listener connection per app, shared by all of
its streams (:class:`Hub`), and one reader: woken, it reads the new records
once and hands them to every stream, which shows its user the ones they may
view. The objects those records name are loaded once per wake-up for all
streams (:class:`Wakeup`), and each is decided once per viewer. A stream
whose cursor is not among the records the hub holds (a replay after a
reconnect, a stream that fell behind) reads the table itself until it is.
A notification carries nothing but "look again", so a lost one costs
latency, never an event: the reader reads again at each heartbeat too.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import typing as t
import weakref

import sqlalchemy as sa
from flask import Flask, Response, current_app, has_app_context, request, stream_with_context
from sqlalchemy import event, orm

from .events import Page, cursor_of, event_json, latest_cursor, read_rows
from .history import RECORDED
from .i18n import gettext
from .problems import problem
from .tables import history_table

if t.TYPE_CHECKING:
    from .extension import StateMgr

log = logging.getLogger(__name__)

#: how often the table is looked at where nothing announces a change
WATCH_INTERVAL = 0.1
#: the longest wait before a listener connects again after losing its server
MAX_RECONNECT_DELAY = 5.0
#: seconds a listener waits for a message before it looks whether to stop
LISTEN_TIMEOUT = 1.0
#: how soon a stream reads again while an older transaction holds records
#: back (doubling up to the maximum): that transaction's end is announced
#: only if it wrote records itself
PENDING_DELAY = 0.05
MAX_PENDING_DELAY = 0.4

#: the records a hub keeps for its streams; one further behind reads itself
WINDOW = 1000

Wake = t.Callable[[], None]
Key = tuple[str, str]
#: ``load(session, keys)``: the objects of exposed models that (model class
#: name, object id) keys name, each with its exposed name
Load = t.Callable[[orm.Session, t.Collection[Key]], dict[Key, tuple[str, t.Any]]]

#: the config keys of the stream, with their defaults
DEFAULTS: dict[str, t.Any] = {
    #: a Redis URL: announce through its pub/sub instead of the database
    "STATEMGR_EVENTS_BROKER": None,
    #: the NOTIFY or pub/sub channel; apps sharing a database or broker
    #: without sharing their objects each need their own
    "STATEMGR_EVENTS_CHANNEL": "statemgr_events",
    #: open streams per worker process and app; past it a 503 (0: none)
    "STATEMGR_EVENTS_STREAMS": 100,
    #: seconds between keep-alive comments
    "STATEMGR_EVENTS_HEARTBEAT": 15.0,
    #: the reconnection delay a client is told, in ms
    "STATEMGR_EVENTS_RETRY": 1000,
}


class Wakeup:
    """What the streams woken at once share: the objects their new records
    name, loaded once in a session of its own, and whether each viewer may
    view each one, decided once. Streams use it one at a time, as they would
    share any session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: orm.Session | None = None
        self._objects: dict[Key, tuple[str, t.Any] | None] = {}
        self._decided: dict[tuple[Key, t.Hashable], bool] = {}
        self._messages: dict[str, str] = {}

    def messages(self, ext: StateMgr, load: Load, rows: t.Sequence[sa.RowMapping], user: t.Any) -> list[str]:
        """The events of ``rows`` that ``user`` may view, as SSE messages."""
        viewer = _viewer(user)
        keys = [(row["model"], row["object_id"]) for row in rows]
        shown: list[str] = []
        with self._lock:
            if self._session is None:
                assert ext.db is not None
                # it outlives the stream that made it: a session of its own,
                # whose objects stay loaded between transactions
                self._session = ext.db.session.session_factory(expire_on_commit=False)
            session = self._session
            try:
                missing = {key for key in keys if key not in self._objects}
                if missing:
                    found = load(session, missing)
                    self._objects.update({key: found.get(key) for key in missing})
                for row, key in zip(rows, keys):
                    entry = self._objects[key]
                    if entry is not None and self._may_view(ext, key, entry[1], user, viewer):
                        shown.append(self._message(row, entry[0]))
            except BaseException:
                session.rollback()
                raise
            # the connection goes back to the pool between wake-ups; the
            # objects stay loaded for the next stream
            session.commit()
        return shown

    def _may_view(self, ext: StateMgr, key: Key, obj: t.Any, user: t.Any, viewer: t.Hashable | None) -> bool:
        if viewer is None:
            return ext.can_view(obj, user)
        decided = self._decided.get((key, viewer))
        if decided is None:
            decided = self._decided[(key, viewer)] = ext.can_view(obj, user)
        return decided

    def _message(self, row: sa.RowMapping, model: str) -> str:
        cursor = cursor_of(row)
        message = self._messages.get(cursor)
        if message is None:
            message = self._messages[cursor] = sse_message(event_json(row, model))
        return message


def _viewer(user: t.Any) -> t.Hashable | None:
    """What makes two streams' users the same viewer, so one decision serves
    both: no user, a mapped user's row, or an equal hashable user (a user
    that cannot be compared is decided for each stream)."""
    if user is None:
        return ("anonymous",)
    state = sa.inspect(user, raiseerr=False)
    if state is not None:
        return None if state.identity_key is None else ("row", state.identity_key)
    try:
        hash(user)
    except TypeError:
        return None
    return ("user", type(user), user)


def sse_message(event: dict[str, t.Any]) -> str:
    """``event`` as one Server-Sent Events message, its cursor the id."""
    return f"id: {event['cursor']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"


class Hub:
    """The streams of one app in one worker process: their count (capped),
    the listener thread that hears of new records while any is open, and the
    reader thread that reads them once for all."""

    def __init__(self, app: Flask) -> None:
        self.capacity = int(app.config["STATEMGR_EVENTS_STREAMS"])
        self._heartbeat = float(app.config["STATEMGR_EVENTS_HEARTBEAT"])
        self._limit = int(app.config["STATEMGR_EVENTS_LIMIT"])
        self._app = weakref.ref(app)
        self._open = 0
        self._generation = 0
        self._changed = threading.Condition()
        self._pid = os.getpid()
        self._stopped: threading.Event | None = None
        self._dirty = threading.Event()
        #: the cursors the hub holds records after, oldest first; the record
        #: after ``_cursors[i]`` is ``_rows[i]``
        self._cursors: list[str] = []
        self._rows: list[sa.RowMapping] = []
        self._index: dict[str, int] = {}
        self.wakeup = Wakeup()
        #: set once the listener is subscribed (at its first wake)
        self.ready = threading.Event()

    def acquire(self) -> bool:
        """Count a new stream in, unless the worker already holds its cap;
        the first one starts the listener and the reader."""
        with self._changed:
            if self._open >= self.capacity:
                return False
            self._open += 1
            if self._stopped is None:
                self.ready.clear()
                self._stopped = stopped = threading.Event()
                for target, name in ((self._listen, "statemgr-events"), (self._read, "statemgr-events-reader")):
                    threading.Thread(target=target, args=(stopped,), name=name, daemon=True).start()
            return True

    def release(self) -> None:
        """Count a stream out; the last one stops the listener and reader."""
        with self._changed:
            self._open -= 1
            if not self._open and self._stopped is not None:
                self._stopped.set()
                self._dirty.set()
                self._stopped = None
                self._cursors, self._rows, self._index = [], [], {}

    def since(self, cursor: str) -> tuple[int, list[sa.RowMapping] | None, Wakeup]:
        """The generation, the records after ``cursor`` (``None`` when the
        hub does not hold that cursor: read the table) and what the streams
        of this wake-up share, all as of one moment."""
        with self._changed:
            at = self._index.get(cursor)
            return self._generation, None if at is None else self._rows[at:], self.wakeup

    def wait(self, seen: int, timeout: float) -> bool:
        """Wait until woken after ``seen``; ``False`` when ``timeout`` ran out."""
        with self._changed:
            return self._changed.wait_for(lambda: self._generation != seen, timeout)

    def wake(self) -> None:
        """Have the reader look again."""
        self._dirty.set()
        self.ready.set()

    def _read(self, stopped: threading.Event) -> None:
        delay = again = PENDING_DELAY
        while True:
            self._dirty.wait(delay)
            self._dirty.clear()
            if stopped.is_set():
                return
            app = self._app()
            if app is None:
                return
            try:
                with app.app_context():
                    pending = self._read_once(app)
            except Exception:  # noqa: BLE001 - any failure: read again soon
                log.warning("statemgr: the events reader could not read the table", exc_info=True)
                pending = True
            del app
            if pending:
                # an older transaction holds records back: its end is
                # announced only if it wrote records itself
                delay, again = again, min(again * 2, MAX_PENDING_DELAY)
            else:
                # a lost announcement costs at most this
                delay, again = self._heartbeat, PENDING_DELAY

    def _read_once(self, app: Flask) -> bool:
        """Read the records after the last one held, keep the latest
        :data:`WINDOW` of them and wake the streams if any came; ``True``
        while records are held back."""
        ext: StateMgr = app.extensions["statemgr"]
        assert ext.db is not None
        with ext.db.engine.connect() as connection:
            start = self._cursors[-1] if self._cursors else latest_cursor(connection)
            cursor = start
            rows: list[sa.RowMapping] = []
            while True:
                read = read_rows(connection, cursor, self._limit)
                rows += read.rows
                cursor = read.cursor
                if not read.more:
                    break
        with self._changed:
            if self._cursors and self._cursors[-1] != start:
                # the streams closed and opened again meanwhile
                return True
            if self._cursors and not rows:
                return read.pending
            cursors = (self._cursors or [start]) + [cursor_of(row) for row in rows]
            rows = self._rows + rows
            drop = max(0, len(rows) - WINDOW)
            self._cursors, self._rows = cursors[drop:], rows[drop:]
            self._index = {cursor: at for at, cursor in enumerate(self._cursors)}
            self.wakeup = Wakeup()
            self._generation += 1
            self._changed.notify_all()
        return read.pending

    def _listen(self, stopped: threading.Event) -> None:
        delay = WATCH_INTERVAL
        while not stopped.is_set():
            app = self._app()
            if app is None:
                return
            try:
                with app.app_context():
                    self._listen_once(app, stopped)
            except Exception:  # noqa: BLE001 - any failure: reconnect, then read again
                log.warning("statemgr: the events listener lost its connection", exc_info=True)
            del app
            # whatever was announced meanwhile is read now
            self.wake()
            stopped.wait(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY)

    def _listen_once(self, app: Flask, stopped: threading.Event) -> None:
        ext: StateMgr = app.extensions["statemgr"]
        assert ext.db is not None
        broker = app.config["STATEMGR_EVENTS_BROKER"]
        channel = app.config["STATEMGR_EVENTS_CHANNEL"]
        engine = ext.db.engine
        if broker:
            _listen_redis(broker, channel, self.wake, stopped)
        elif engine.dialect.name == "postgresql":
            _listen_postgres(engine, channel, self.wake, stopped)
        else:
            _watch_table(engine, self.wake, stopped)


def _listen_redis(url: str, channel: str, wake: Wake, stopped: threading.Event) -> None:
    import redis

    client = redis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    try:
        pubsub.subscribe(channel)
        wake()
        while not stopped.is_set():
            if pubsub.get_message(timeout=LISTEN_TIMEOUT) is not None:
                wake()
    finally:
        pubsub.close()
        client.close()


def _listen_postgres(engine: sa.Engine, channel: str, wake: Wake, stopped: threading.Event) -> None:
    from psycopg import sql

    # a connection of its own for as long as the listener runs: out of the pool
    raw = engine.raw_connection()
    connection = raw.driver_connection
    assert connection is not None
    raw.detach()
    try:
        connection.rollback()
        connection.autocommit = True
        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        wake()
        while not stopped.is_set():
            for _ in connection.notifies(timeout=LISTEN_TIMEOUT):
                wake()
    finally:
        raw.close()


def _watch_table(engine: sa.Engine, wake: Wake, stopped: threading.Event) -> None:
    latest = sa.select(sa.func.max(history_table.c.id))
    seen = None
    while not stopped.wait(WATCH_INTERVAL):
        with engine.connect() as connection:
            now = connection.execute(latest).scalar()
        if now != seen:
            seen = now
            wake()


_hubs: weakref.WeakKeyDictionary[Flask, Hub] = weakref.WeakKeyDictionary()
_hubs_lock = threading.Lock()


def hub_for(app: Flask) -> Hub:
    """The app's hub in this process, started on first use (so after a
    pre-fork server has forked)."""
    with _hubs_lock:
        hub = _hubs.get(app)
        if hub is None or hub._pid != os.getpid():
            hub = _hubs[app] = Hub(app)
        return hub


def _holds_streams(environ: t.Mapping[str, t.Any]) -> bool:
    """Whether this server can keep a request open without blocking others:
    a threaded server (gthread, Werkzeug's) or gevent's. A sync worker
    cannot, and would be killed by its timeout besides."""
    if environ.get("wsgi.multithread"):
        return True
    gevent = sys.modules.get("gevent.monkey")
    return gevent is not None and bool(gevent.is_module_patched("socket"))


def event_stream(ext: StateMgr, after: str, read: t.Callable[[str], Page], load: Load) -> Response:
    """The response of ``GET {prefix}/events/stream`` from the cursor
    ``after``; ``read(cursor)`` reads the feed as the current user, ``load``
    the objects that the hub's records name."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    if not _holds_streams(request.environ):
        return _unavailable(gettext("This server does not hold event streams; poll the events endpoint"))
    hub = hub_for(app)
    if not hub.acquire():
        return _unavailable(gettext("Too many open event streams; poll the events endpoint"))
    heartbeat = float(config["STATEMGR_EVENTS_HEARTBEAT"])
    assert ext.db is not None
    session = ext.db.session

    def generate() -> t.Iterator[str]:
        yield f"retry: {int(config['STATEMGR_EVENTS_RETRY'])}\n\n"
        # what commits after the first read must be announced to us
        hub.ready.wait(heartbeat)
        cursor = after
        wait = PENDING_DELAY
        while True:
            seen, rows, wakeup = hub.since(cursor)
            if rows is None:
                # not among the hub's records: read the table as /events does
                page = read(cursor)
                # the connection goes back to the pool while the stream waits
                session.rollback()
                for event in page.events:
                    yield sse_message(event)
                cursor = page.cursor
                if page.more:
                    continue
                if page.pending:
                    hub.wait(seen, wait)
                    wait = min(wait * 2, MAX_PENDING_DELAY)
                    continue
                wait = PENDING_DELAY
            elif rows:
                messages = wakeup.messages(ext, load, rows, ext.current_user())
                # whatever the user check read of the user's own session
                session.rollback()
                yield from messages
                cursor = cursor_of(rows[-1])
                continue
            if not hub.wait(seen, heartbeat):
                yield ": keep-alive\n\n"

    response = Response(stream_with_context(generate()), mimetype="text/event-stream")
    # the server closes every response, also one whose body it never read
    # (a HEAD, a client gone at once): a generator's own cleanup would not run
    response.call_on_close(hub.release)
    response.headers["Cache-Control"] = "no-cache"
    # nginx buffers a proxied response unless told otherwise
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _unavailable(detail: str) -> Response:
    response = problem(503, gettext("Service unavailable"), detail, reasons=[])
    response.headers["Retry-After"] = "30"
    return response


@event.listens_for(orm.Session, "before_commit")
def _notify(session: orm.Session) -> None:
    """Announce the records of this transaction: inside it on PostgreSQL,
    or to the broker once it committed."""
    # a savepoint's release fires this too: announce once, at the commit
    if session.in_nested_transaction() or not session.info.pop(RECORDED, None):
        return
    if _config("STATEMGR_EVENTS_BROKER"):
        session.info[_PUBLISH] = True
    elif session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_notify(_config("STATEMGR_EVENTS_CHANNEL"), "")))


@event.listens_for(orm.Session, "after_commit")
def _publish(session: orm.Session) -> None:
    if not session.info.pop(_PUBLISH, None):
        return
    broker = _config("STATEMGR_EVENTS_BROKER")
    try:
        _redis(broker).publish(_config("STATEMGR_EVENTS_CHANNEL"), "")
    except Exception:  # noqa: BLE001 - the commit stands; streams read again at their heartbeat
        log.warning("statemgr: could not announce events to %s", broker, exc_info=True)


#: in ``Session.info`` from the commit on, until the broker has heard of it
_PUBLISH = "statemgr.publish"


def _config(key: str) -> t.Any:
    if has_app_context() and "statemgr" in current_app.extensions:
        return current_app.config[key]
    return DEFAULTS[key]


_clients: dict[str, t.Any] = {}


def _redis(url: str) -> t.Any:
    """One client (and so one connection pool) per broker URL and process."""
    client = _clients.get(url)
    if client is None:
        import redis

        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=2)
    return client
