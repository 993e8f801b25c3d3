"""A small timing harness on :func:`time.perf_counter_ns`.

A statement is compiled into a loop (as :mod:`timeit` does, so no function
call is added around it), calibrated until one round takes
:data:`ROUND_NS`, warmed up, then timed for several rounds. The figure is
the median time per operation, minus the median cost of an empty loop
iteration measured the same way, so a 40 ns attribute test is not half
loop overhead. The garbage collector stays on: allocation-heavy code pays
for its collections, as it does in an application.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
import typing as t

#: target length of one timed round, and how many rounds
ROUND_NS = 40_000_000
ROUNDS = 9
QUICK_ROUND_NS = 15_000_000
QUICK_ROUNDS = 5

_TEMPLATE = """
def _inner(_n, _clock):
{setup}
    _t0 = _clock()
    for _ in range(_n):
{stmt}
    _elapsed = _clock() - _t0
{teardown}
    return _elapsed
"""


def quick() -> bool:
    """Whether the runner asked for the short mode (``--quick``)."""
    return os.environ.get("BENCH_QUICK") == "1"


@dataclasses.dataclass(frozen=True)
class Timing:
    """Median nanoseconds per operation over ``rounds`` rounds of
    ``number`` operations each."""

    ns: float
    number: int
    rounds: int
    spread: float  # (max - min) / median of the rounds, as a noise hint

    @property
    def per_second(self) -> float:
        return 1e9 / self.ns if self.ns > 0 else float("inf")


def _indent(code: str, spaces: int) -> str:
    lines = [line for line in code.strip("\n").splitlines()] or ["pass"]
    return "\n".join(" " * spaces + line for line in lines)


def _compile(
    stmt: str, namespace: dict[str, t.Any], setup: str = "", teardown: str = ""
) -> t.Callable[[int, t.Callable[[], int]], int]:
    source = _TEMPLATE.format(
        setup=_indent(setup or "pass", 4), stmt=_indent(stmt, 8), teardown=_indent(teardown or "pass", 4)
    )
    scope = dict(namespace)
    exec(compile(source, "<bench>", "exec"), scope)  # noqa: S102 - our own statements
    return scope["_inner"]  # type: ignore[no-any-return]


def _calibrate(inner: t.Callable[[int, t.Callable[[], int]], int], round_ns: int, max_number: int) -> int:
    number = 1
    while number < max_number:
        elapsed = inner(number, time.perf_counter_ns)
        if elapsed >= round_ns / 4:
            return max(1, min(max_number, int(number * round_ns / max(elapsed, 1))))
        number *= 4
    return max_number


_empty_cache: dict[int, float] = {}


def _empty_loop_ns(number: int, rounds: int) -> float:
    """Median cost of one iteration of an empty loop of ``number`` turns."""
    cached = _empty_cache.get(number)
    if cached is None:
        inner = _compile("pass", {})
        samples = [inner(number, time.perf_counter_ns) / number for _ in range(max(rounds, 5))]
        cached = _empty_cache[number] = statistics.median(samples)
    return cached


@dataclasses.dataclass(frozen=True)
class Case:
    """A statement (Python source, may span lines) to time, with the names it
    uses; ``setup`` and ``teardown`` run once per round, outside the clock; ``max_number``
    bounds operations per round, for statements that consume something."""

    stmt: str
    namespace: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    setup: str = ""
    teardown: str = ""
    max_number: int = 10_000_000


def measure(
    cases: t.Mapping[str, Case], *, round_ns: int | None = None, rounds: int | None = None
) -> dict[str, Timing]:
    """Time every case, interleaving their rounds (A B C A B C ...) so a
    machine that slows down for a moment slows every system alike."""
    short = quick()
    round_ns = round_ns or (QUICK_ROUND_NS if short else ROUND_NS)
    rounds = rounds or (QUICK_ROUNDS if short else ROUNDS)
    loops = {}
    for key, case in cases.items():
        inner = _compile(case.stmt, case.namespace, case.setup, case.teardown)
        # one operation first: a first call that builds what later calls
        # reuse would otherwise calibrate the loop to a few operations
        inner(1, time.perf_counter_ns)
        number = _calibrate(inner, round_ns, case.max_number)
        # warm-up: caches, lazily built plans, the allocator
        inner(number, time.perf_counter_ns)
        loops[key] = (inner, number)
    samples: dict[str, list[float]] = {key: [] for key in cases}
    for _ in range(rounds):
        for key, (inner, number) in loops.items():
            samples[key].append(inner(number, time.perf_counter_ns) / number)
    timings = {}
    for key, (_, number) in loops.items():
        median = statistics.median(samples[key])
        net = max(median - _empty_loop_ns(number, rounds), 0.0)
        spread = (max(samples[key]) - min(samples[key])) / median if median else 0.0
        timings[key] = Timing(net, number, rounds, spread)
    return timings
