"""Keeping open pages in sync: polling ``/events`` every second against the
event stream, side by side in one run.

The example app runs under gunicorn (its own settings: gthread workers) on
PostgreSQL. ``N`` open pages (100 and 1,000 by default), each one keep-alive
connection from one asyncio process signed in as the viewer, either poll
``/_statemgr/events?after=<cursor>`` every second or hold
``/_statemgr/events/stream`` open. Per mode:

- idle: nothing changes for ``--idle`` seconds; the server's requests/s and
  the CPU its processes spend (``/proc``: gunicorn's master and workers, not
  PostgreSQL), as a share of one core;
- changing: one project's review is approved per second (in this process,
  through the extension, so the commit announces it) for ``--changing``
  seconds; the latency from just before each commit to each page receiving
  the event, p50 and p99 over every page and change.

``python -m bench.events [--pages 100,1000] [--idle 10] [--changing 20]``.
The load generator shares the machine's cores with the server and
PostgreSQL, so on a small machine the figures are an upper bound for both.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import typing as t
import urllib.request
from pathlib import Path

from .databases import postgres_schema
from .http_load import free_port, sign_in

ROOT = Path(__file__).parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(master: int) -> float:
    """User and system CPU of ``master`` and its children so far."""
    total = 0
    pids = [master]
    children = Path(f"/proc/{master}/task/{master}/children")
    with contextlib.suppress(OSError):
        pids += [int(p) for p in children.read_text().split()]
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


@contextlib.contextmanager
def serve(url: str, pages: int) -> t.Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "2",
        # a worker may get most of the streams: room for all, and requests
        "THREADS": str(pages + 32),
        "STATEMGR_EVENTS_STREAMS": str(pages + 16),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "example_app/gunicorn.conf.py",
            "--log-level",
            "warning",
            "example_app:create_app()",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_statemgr/schema", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        yield port, server
    finally:
        server.terminate()
        server.wait(30)


class Pages:
    """``count`` open pages against one server, each one connection."""

    def __init__(self, port: int, cookie: str, count: int) -> None:
        self.port = port
        self.cookie = cookie
        self.count = count
        self.requests = 0
        #: (record id, seconds after the perform began) per page and event
        self.received: list[tuple[int, float]] = []
        self.errors: list[str] = []
        self.reconnects = 0

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)

    def _request(self, path: str) -> bytes:
        return (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {self.cookie}\r\n"
            "Accept: application/json, text/event-stream\r\n\r\n"
        ).encode()

    async def _head(self, reader: asyncio.StreamReader) -> dict[str, str]:
        status = await reader.readline()
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        if not status.startswith(b"HTTP/1.1 200"):
            body = await reader.read(int(headers.get("content-length", 0)))
            raise RuntimeError(status.decode(errors="replace").strip(), body.decode(errors="replace")[:200])
        return headers

    async def poll(self, cursor: str, until: float) -> None:
        reader, writer = await self._open()
        try:
            while time.monotonic() < until:
                writer.write(self._request(f"/_statemgr/events?after={cursor}"))
                try:
                    headers = await self._head(reader)
                except (RuntimeError, ConnectionError):
                    # the server closed the kept-alive connection: a browser
                    # opens another one
                    writer.close()
                    reader, writer = await self._open()
                    self.reconnects += 1
                    continue
                body = json.loads(await reader.readexactly(int(headers["content-length"])))
                self.requests += 1
                now = time.monotonic()
                self.received += [(e["id"], now) for e in body["events"]]
                cursor = body["cursor"]
                await asyncio.sleep(1.0)
        finally:
            writer.close()

    async def stream(self, cursor: str, until: float) -> None:
        reader, writer = await self._open()
        self.requests += 1
        try:
            writer.write(self._request(f"/_statemgr/events/stream?after={cursor}"))
            await self._head(reader)
            buffer = b""
            while time.monotonic() < until:
                try:
                    size = await asyncio.wait_for(reader.readline(), until - time.monotonic())
                except TimeoutError:
                    break
                chunk = await reader.readexactly(int(size, 16) + 2)
                buffer += chunk[:-2]
                while b"\n\n" in buffer:
                    message, buffer = buffer.split(b"\n\n", 1)
                    for line in message.split(b"\n"):
                        if line.startswith(b"data: "):
                            self.received.append((json.loads(line[6:])["id"], time.monotonic()))
        finally:
            writer.close()

    async def run(self, mode: str, cursor: str, seconds: float) -> None:
        until = time.monotonic() + seconds
        page = self.poll if mode == "poll" else self.stream
        results = await asyncio.gather(*(page(cursor, until) for _ in range(self.count)), return_exceptions=True)
        self.errors += [repr(r) for r in results if isinstance(r, BaseException)]


def changer(url: str, seconds: float, committed: dict[int, float], stop: threading.Event) -> None:
    """Approve one pending review a second through the extension, for
    ``seconds``: the last change then has time to reach every page before
    the pages stop listening (a change they could not receive in time would
    be left out of the figures, not counted late)."""
    os.environ["DATABASE_URL"] = url
    from example_app import create_app
    from example_app.models import Project, User, db

    app = create_app()
    with app.app_context():
        olivia = db.session.scalars(db.select(User).filter_by(name="Olivia")).one()
        rita = db.session.scalars(db.select(User).filter_by(name="Rita")).one()
        projects = [Project(title=f"Bench {i}", owner_id=olivia.id) for i in range(int(seconds))]
        db.session.add_all(projects)
        db.session.commit()
        ids = [p.id for p in projects]
        stop.wait(1.0)
        for id_ in ids:
            if stop.is_set():
                break
            began = time.monotonic()
            result = db.session.get(Project, id_).review.approve(user=rita)
            committed[result.record.id] = began
            db.session.commit()
            stop.wait(max(0.0, 1.0 - (time.monotonic() - began)))
        db.session.remove()


def cursor_now(port: int, cookie: str) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/_statemgr/events", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["cursor"])


def measure(url: str, pages: int, mode: str, idle: float, changing: float) -> dict[str, t.Any]:
    with serve(url, pages) as (port, server):
        cookie, _ = sign_in(port, "Victor")
        clients = Pages(port, cookie, pages)
        cursor = cursor_now(port, cookie)
        committed: dict[int, float] = {}
        stop = threading.Event()

        async def phases() -> tuple[float, float, int]:
            task = asyncio.ensure_future(clients.run(mode, cursor, idle + changing + 3))
            # let every page connect before the idle measurement
            await asyncio.sleep(3)
            requests, cpu, began = clients.requests, cpu_seconds(server.pid), time.monotonic()
            await asyncio.sleep(idle)
            elapsed = time.monotonic() - began
            idle_cpu = (cpu_seconds(server.pid) - cpu) / elapsed
            idle_rate = (clients.requests - requests) / elapsed
            worker = threading.Thread(target=changer, args=(url, changing - 2, committed, stop))
            worker.start()
            await task
            stop.set()
            await asyncio.to_thread(worker.join)
            return idle_cpu, idle_rate, clients.requests

        idle_cpu, idle_rate, _ = asyncio.run(phases())
        latencies = [at - committed[id_] for id_, at in clients.received if id_ in committed]
        expected = len(committed) * pages
        quantiles = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
        return {
            "pages": pages,
            "mode": mode,
            "idle_requests_per_s": round(idle_rate, 1),
            "idle_cpu_percent_of_a_core": round(100 * idle_cpu, 1),
            "changes": len(committed),
            "delivered": len(latencies),
            "expected": expected,
            "p50_ms": round(1000 * quantiles[49], 1),
            "p99_ms": round(1000 * quantiles[98], 1),
            "reconnects": clients.reconnects,
            "page_errors": len(clients.errors),
            "first_errors": sorted(set(clients.errors))[:3],
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default="100,1000", help="open page counts, comma-separated (default: 100,1000)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds measured while nothing changes (default: 10)")
    parser.add_argument(
        "--changing", type=float, default=20.0, help="seconds of one change per second measured (default: 20)"
    )
    args = parser.parse_args(argv)
    # a socket per page here, and in the server (which inherits the limit)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    rows = []
    for pages in (int(p) for p in args.pages.split(",")):
        for mode in ("poll", "stream"):
            with postgres_schema() as (url, _):
                rows.append(measure(url, pages, mode, args.idle, args.changing))
            print(json.dumps(rows[-1]), flush=True)
    print(
        f"\n{'pages':>5} {'mode':>6} {'idle req/s':>10} {'idle CPU %':>10} {'delivered':>13} {'p50 ms':>8} {'p99 ms':>8}"
    )
    for row in rows:
        print(
            f"{row['pages']:>5} {row['mode']:>6} {row['idle_requests_per_s']:>10} {row['idle_cpu_percent_of_a_core']:>10}"
            f" {row['delivered']:>6}/{row['expected']:<6} {row['p50_ms']:>8} {row['p99_ms']:>8}"
        )


if __name__ == "__main__":
    main()
