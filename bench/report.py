"""What a benchmark group reports: figures, side-by-side ratios with their
targets, and checks. A group fills one :class:`Report`; the runner collects
them from every group's process and prints the tables."""

from __future__ import annotations

import dataclasses
import json
import typing as t

from .harness import Timing


@dataclasses.dataclass
class Figure:
    """One measured thing. ``rate`` is operations (or requests) per second,
    the unit every ratio compares."""

    key: str
    label: str
    system: str
    rate: float
    ns: float | None = None
    extra: dict[str, t.Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Comparison:
    """``ours`` against ``other`` measured in the same process run:
    ``ratio`` = our rate / their rate (above 1: ours is faster)."""

    what: str
    ours: str
    other: str
    ratio: float
    minimum: float | None = None

    @property
    def verdict(self) -> str:
        if self.minimum is None:
            return ""
        return "PASS" if self.ratio >= self.minimum else "MISS"


@dataclasses.dataclass
class Check:
    """A target that is a yes/no fact rather than a ratio."""

    what: str
    ok: bool
    detail: str

    @property
    def verdict(self) -> str:
        return "PASS" if self.ok else "MISS"


@dataclasses.dataclass
class Report:
    group: str
    title: str
    figures: list[Figure] = dataclasses.field(default_factory=list)
    comparisons: list[Comparison] = dataclasses.field(default_factory=list)
    checks: list[Check] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def timing(self, key: str, label: str, system: str, timing: Timing, **extra: t.Any) -> Figure:
        figure = Figure(key, label, system, timing.per_second, timing.ns, extra)
        self.figures.append(figure)
        return figure

    def rate(self, key: str, label: str, system: str, rate: float, **extra: t.Any) -> Figure:
        figure = Figure(key, label, system, rate, 1e9 / rate if rate else None, extra)
        self.figures.append(figure)
        return figure

    def figure(self, key: str) -> Figure:
        for figure in self.figures:
            if figure.key == key:
                return figure
        raise KeyError(key)

    def compare(self, what: str, ours: str, other: str, minimum: float | None = None) -> Comparison:
        a, b = self.figure(ours), self.figure(other)
        comparison = Comparison(what, ours, other, a.rate / b.rate if b.rate else float("inf"), minimum)
        self.comparisons.append(comparison)
        return comparison

    def check(self, what: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(what, ok, detail))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def dump(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(dataclasses.asdict(self), f)

    @classmethod
    def load(cls, path: str) -> Report:
        with open(path) as f:
            data = json.load(f)
        return cls(
            data["group"],
            data["title"],
            [Figure(**x) for x in data["figures"]],
            [Comparison(**x) for x in data["comparisons"]],
            [Check(**x) for x in data["checks"]],
            data["notes"],
        )
