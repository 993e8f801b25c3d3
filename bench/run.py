"""Run every benchmark group, each in a process of its own, and print one
table of ratios (measured side by side in the same process run), targets,
checks and figures.

::

    .venv/bin/python -m bench                 # everything, ~5 minutes on 2 cores
    .venv/bin/python -m bench --quick         # shorter rounds, fewer points (~2 minutes)
    .venv/bin/python -m bench state listing   # some groups
    .venv/bin/python -m bench --list

PostgreSQL comes from ``STATEMGR_TEST_POSTGRES`` (default the test suite's
``postgresql+psycopg://postgres@127.0.0.1:5432/test``); every group that
uses it works in a schema of its own and drops it afterwards.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import typing as t
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):
    # ``python bench/run.py``: import the package from the checkout instead
    # of letting bench/'s modules shadow the standard library's
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.insert(0, str(here.parent))
    __package__ = "bench"

from .report import Report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

#: group name -> module in this package, in running order
GROUPS = {
    "state": "state_test",
    "availability": "availability",
    "listing": "listing",
    "memory": "perform_memory",
    "database": "perform_db",
    "http": "http_load",
    "concurrency": "concurrency",
    "scaling": "scaling",
    "bulk": "bulk",
}
#: groups other engineers own: scripts in bench/, run as they are
SCRIPTS = {"store": "store.py", "chains": "chains.py"}
GROUP_TIMEOUT = 600


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for dist in ("flask", "sqlalchemy", "django", "django-fsm-2", "transitions", "python-statemachine", "psycopg"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    return (
        f"nproc {os.cpu_count()}, CPU {cpu}, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.release()}\n" + ", ".join(versions)
    )


# -- formatting ---------------------------------------------------------------


def duration(ns: float | None) -> str:
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def rate(per_second: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if per_second >= scale:
            return f"{per_second / scale:.3g}{unit}/s"
    return f"{per_second:.3g}/s"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def render(reports: list[Report]) -> str:
    out = []
    ratio_rows = []
    for r in reports:
        figures = {f.key: f for f in r.figures}
        for c in r.comparisons:
            target = f">= {c.minimum:.2f}" if c.minimum is not None else ""
            ratio_rows.append(
                [
                    r.group,
                    c.what,
                    figures[c.other].system + ": " + figures[c.other].label,
                    f"{c.ratio:.2f}x",
                    target,
                    c.verdict,
                ]
            )
        for k in r.checks:
            ratio_rows.append([r.group, k.what, k.detail, "", "", k.verdict])
    if ratio_rows:
        out.append("Ratios: our throughput / theirs, measured side by side in the same run (> 1: ours is faster)\n")
        out.append(table(ratio_rows, ["group", "what", "against", "ratio", "target", ""]))
    for r in reports:
        out.append(f"\n{r.group}: {r.title}\n")
        rows = []
        for f in r.figures:
            extra = ", ".join(f"{k} {v}" if isinstance(v, str) else f"{k} {_number(k, v)}" for k, v in f.extra.items())
            rows.append([f.system, f.label, duration(f.ns), rate(f.rate), extra])
        if rows:
            out.append(table(rows, ["system", "what", "per op", "rate", ""]))
        for note in r.notes:
            out.append(f"  note: {note}")
    return "\n".join(out)


def _number(key: str, value: t.Any) -> str:
    if key.endswith("_ns"):
        return duration(value)
    if key.endswith("_ms"):
        return f"{value:.3g} ms"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


# -- running ------------------------------------------------------------------


def run_child(name: str, out: str) -> int:
    """Inside a group's own process: run it and write its report."""
    module = importlib.import_module(f".{GROUPS[name]}", __package__)
    report = Report(name, module.TITLE)
    try:
        module.run(report)
    except Exception:
        traceback.print_exc()
        report.note("FAILED: " + traceback.format_exc().strip().splitlines()[-1])
        report.dump(out)
        return 1
    report.dump(out)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="*", help=f"groups to run (default all): {', '.join([*GROUPS, *SCRIPTS])}")
    parser.add_argument("--quick", action="store_true", help="shorter rounds and fewer scaling points")
    parser.add_argument("--list", action="store_true", help="list the groups and exit")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args.child, args.out)
    if args.list:
        for name, module in GROUPS.items():
            print(f"{name:13} {importlib.import_module(f'.{module}', __package__).TITLE}")
        for name, script in SCRIPTS.items():
            present = (ROOT / "bench" / script).exists()
            print(f"{name:13} bench/{script}{'' if present else ' (not present)'}")
        return 0
    unknown = [g for g in args.groups if g not in GROUPS and g not in SCRIPTS]
    if unknown:
        parser.error(f"unknown group(s): {', '.join(unknown)}")
    selected = args.groups or [*GROUPS, *SCRIPTS]
    env = dict(os.environ, BENCH_QUICK="1" if args.quick else "0")
    print(machine())
    print(f"mode: {'quick' if args.quick else 'full'}, load average at start {_load()}\n")
    reports: list[Report] = []
    scripts: list[tuple[str, str]] = []
    failed = False
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for name in selected:
            began = time.monotonic()
            print(f"running {name} ...", end="", flush=True)
            if name in SCRIPTS:
                path = ROOT / "bench" / SCRIPTS[name]
                if not path.exists():
                    print(" not present, skipped")
                    continue
                done = _run([sys.executable, str(path)], env, capture=True)
                scripts.append((name, done.stdout + (done.stderr if done.returncode else "")))
            else:
                out = os.path.join(tmp, f"{name}.json")
                done = _run([sys.executable, "-m", "bench", "--child", name, "--out", out], env, capture=False)
                if os.path.exists(out):
                    reports.append(Report.load(out))
                else:
                    reports.append(Report(name, "(no report)", notes=[f"FAILED: exit status {done.returncode}"]))
            failed |= done.returncode != 0
            print(f" {time.monotonic() - began:.0f} s" + ("" if done.returncode == 0 else f" (exit {done.returncode})"))
    print(f"\nall groups: {time.monotonic() - started:.0f} s, load average at the end {_load()}\n")
    print(render(reports))
    for name, output in scripts:
        print(f"\n{name}: bench/{SCRIPTS[name]}\n")
        print(output.rstrip())
    misses = [c for r in reports for c in [*r.comparisons, *r.checks] if c.verdict == "MISS"]
    print(
        f"\ntargets: {sum(1 for r in reports for c in [*r.comparisons, *r.checks] if c.verdict)} checked, {len(misses)} missed"
    )
    return 1 if failed else 0


def _load() -> str:
    """The 1, 5 and 15 minute load averages: how busy the machine was."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _run(command: list[str], env: dict[str, str], capture: bool) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            text=True,
            timeout=GROUP_TIMEOUT,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else ""
        return subprocess.CompletedProcess(command, -1, out, f"timed out after {GROUP_TIMEOUT} s")


if __name__ == "__main__":
    sys.exit(main())
