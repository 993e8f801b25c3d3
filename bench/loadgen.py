"""HTTP load for a bounded time, from a process of its own: ``wrk`` when it
is installed, else threads with keep-alive ``http.client`` connections.

Requests go to 127.0.0.1 only. The request path is a template with ``{n}``:
``n = start + k`` for the k-th request (each POST on a fresh row), or
``start + k % modulo`` when ``modulo`` is given (reads cycling over rows).
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"


@dataclasses.dataclass
class Load:
    method: str
    path: str
    start: int = 1
    modulo: int = 0
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: str = ""


@dataclasses.dataclass
class Outcome:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    tool: str

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run(port: int, load: Load, seconds: float, connections: int) -> Outcome:
    """Apply ``load`` for ``seconds`` from a new process."""
    if have_wrk():
        return _wrk(port, load, seconds, connections)
    command = [
        sys.executable,
        "-m",
        "bench.loadgen",
        str(port),
        json.dumps(dataclasses.asdict(load)),
        str(seconds),
        str(connections),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return Outcome(**json.loads(done.stdout.strip().splitlines()[-1]))


_LUA = """
local counter = 0
request = function()
  local n = %(start)d + counter
  if %(modulo)d > 0 then n = %(start)d + counter %% %(modulo)d end
  counter = counter + 1
  return wrk.format(%(method)s, string.gsub(%(path)s, "{n}", tostring(n)), %(headers)s, %(body)s)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCHJSON %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    e.status + e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid Lua string literal here


def _wrk(port: int, load: Load, seconds: float, connections: int) -> Outcome:
    headers = "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in load.headers.items()) + "}"
    script = _LUA % {
        "start": load.start,
        "modulo": load.modulo,
        "method": _lua_string(load.method),
        "path": _lua_string(load.path),
        "headers": headers,
        "body": _lua_string(load.body) if load.body else "nil",
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        # one wrk thread: on a small machine the load generator shares the
        # CPUs with the server, and one thread keeps ``{n}`` unique
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                f.name,
                f"http://{HOST}:{port}",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    finally:
        os.unlink(f.name)
    line = next(x for x in done.stdout.splitlines() if x.startswith("BENCHJSON"))
    requests, duration_us, errors, p50, p99 = (int(x) for x in line.split()[1:])
    return Outcome(requests, duration_us / 1e6, errors, p50 / 1e3, p99 / 1e3, "wrk")


def _threads(port: int, load: Load, seconds: float, connections: int) -> Outcome:
    counter = itertools.count()
    deadline = time.perf_counter() + seconds
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    body = load.body.encode() if load.body else None

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        mine = latencies[i]
        while True:
            k = next(counter)
            n = load.start + (k % load.modulo if load.modulo else k)
            began = time.perf_counter()
            if began >= deadline:
                break
            try:
                conn.request(load.method, load.path.replace("{n}", str(n)), body=body, headers=load.headers)
                response = conn.getresponse()
                response.read()
                if response.status >= 400:
                    errors[i] += 1
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
            mine.append(time.perf_counter() - began)
        conn.close()

    began = time.perf_counter()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    every = sorted(x for mine in latencies for x in mine)
    if not every:
        return Outcome(0, elapsed, sum(errors), 0.0, 0.0, "python")
    return Outcome(
        len(every),
        elapsed,
        sum(errors),
        statistics.median(every) * 1e3,
        every[min(len(every) - 1, int(len(every) * 0.99))] * 1e3,
        "python",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="bench's Python HTTP load generator")
    parser.add_argument("port", type=int)
    parser.add_argument("load", help="a Load as JSON")
    parser.add_argument("seconds", type=float)
    parser.add_argument("connections", type=int)
    args = parser.parse_args(argv)
    outcome = _threads(args.port, Load(**json.loads(args.load)), args.seconds, args.connections)
    print(json.dumps(dataclasses.asdict(outcome)))


if __name__ == "__main__":
    main()
