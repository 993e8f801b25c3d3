"""The event stream across hosts: two app instances on separate loopback
addresses (127.0.0.2 and 127.0.0.3, each its own gunicorn with gthread
workers), one PostgreSQL and one Redis. A change committed through host A
reaches a stream served by host B; B's worker killed mid-stream, the client
reconnects with ``Last-Event-ID`` and gets the rest, nothing lost or twice.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
import typing as t
import urllib.parse
import uuid
from pathlib import Path

import pytest
from reliability_app import ALICE, Population, call, gunicorn, seed

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HOST_A = "127.0.0.2"
HOST_B = "127.0.0.3"
DOCUMENTS = 5


class Client:
    """A Server-Sent Events client reading one connection, as EventSource
    does: it remembers the last event id for the next connection."""

    def __init__(self, base: str, user: str, after: str) -> None:
        self.url = urllib.parse.urlsplit(base)
        self.user = user
        self.after = after
        self.last_id: str | None = None
        self.response: http.client.HTTPResponse | None = None
        self.comments = 0

    def connect(self) -> None:
        connection = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=30)
        headers = {"X-User": self.user, "Accept": "text/event-stream"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        connection.request("GET", f"/_statemgr/events/stream?after={self.after}", headers=headers)
        self.response = connection.getresponse()
        assert self.response.status == 200, self.response.read()

    def events(self, count: int) -> list[dict[str, str]]:
        """The next ``count`` events; fewer if the connection breaks."""
        assert self.response is not None
        received: list[dict[str, str]] = []
        fields: dict[str, str] = {}
        while len(received) < count:
            try:
                line = self.response.readline().decode()
            except (OSError, http.client.HTTPException):
                break
            if not line:
                break
            line = line.rstrip("\n")
            if line == "":
                if "data" in fields:
                    received.append(fields)
                    self.last_id = fields.get("id", self.last_id)
                fields = {}
            elif line.startswith(":"):
                self.comments += 1
            else:
                name, _, value = line.partition(": ")
                fields[name] = value
        return received


def workers_of(base: str) -> set[int]:
    """The gunicorn workers serving ``base``: processes started with its
    address whose parent is not this test (that is the master)."""
    address = base.removeprefix("http://")
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if address in cmdline and ppid != os.getpid():
            found.add(int(proc.name))
    return found


def perform(base: str, document: int, transition: str) -> int:
    status, _, body = call(base, f"/_statemgr/objects/document/{document}/state/{transition}", ALICE, {})
    assert status == 200, body
    return int(body["result"]["record"]["id"])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("broker", ["notify", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_change_through_one_host_reaches_a_stream_on_another_and_survives_its_worker(
    reliability: t.Callable[..., t.Any],
    database_url: str,
    broker: str,
    request: pytest.FixtureRequest,
    capfd: pytest.CaptureFixture[str],
) -> None:
    app = reliability()
    with app.app_context():
        seed(Population(owners=[ALICE.id], documents=[(0, ALICE.id)] * DOCUMENTS))
    environ = {"STATEMGR_EVENTS_CHANNEL": f"statemgr_test_{uuid.uuid4().hex}", "STATEMGR_EVENTS_HEARTBEAT": "60"}
    if broker == "redis":
        environ["STATEMGR_EVENTS_BROKER"] = request.getfixturevalue("redis_url")
    with (
        gunicorn(database_url, workers=1, threads=4, host=HOST_A, **environ) as a,
        gunicorn(database_url, workers=1, threads=4, host=HOST_B, **environ) as b,
    ):
        start = call(b, "/_statemgr/events")[2]["cursor"]
        client = Client(b, "alice", start)
        client.connect()
        performed = [perform(a, d, "archive") for d in range(1, DOCUMENTS + 1)]
        received = client.events(DOCUMENTS)
        assert [json.loads(e["data"])["id"] for e in received] == performed
        # pushed: the stream reads the table again unwoken only after a
        # heartbeat (a minute), and none has come
        assert client.comments == 0

        (worker,) = workers_of(b)
        os.kill(worker, signal.SIGKILL)
        assert client.events(1) == []  # the stream broke with its worker
        # committed while host B has no worker
        performed += [perform(a, d, "restore") for d in range(1, DOCUMENTS + 1)]
        deadline = time.monotonic() + 30
        while worker in workers_of(b) or not workers_of(b):
            assert time.monotonic() < deadline, "gunicorn did not replace its worker"
            time.sleep(0.1)
        client.connect()
        received += client.events(DOCUMENTS)
        assert client.comments == 0
        ids = [json.loads(e["data"])["id"] for e in received]
        assert sorted(ids) == sorted(performed) and len(ids) == len(set(ids))
        assert workers_of(b) != {worker}
    # a listener that fails wakes its streams as it reconnects: that would
    # pass for a push
    assert "events listener" not in capfd.readouterr().err
