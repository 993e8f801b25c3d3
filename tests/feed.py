"""Reading the events feed in tests."""

from __future__ import annotations

import time
import typing as t


def settled(client: t.Any, path: str, headers: t.Mapping[str, str] | None = None) -> dict[str, t.Any]:
    """The JSON of ``GET path`` on ``/events``, asked again while the server
    says committed records are held back (``pending``): on PostgreSQL a
    record waits for every older write transaction of the server to end,
    other test runs' included. At most 30 s."""
    deadline = time.monotonic() + 30
    while True:
        body: dict[str, t.Any] = client.get(path, headers=headers or {}).get_json()
        if not body.get("pending") or time.monotonic() > deadline:
            return body
        time.sleep(0.02)
