"""Both type checkers see the truth: mypy and pyright accept the package and
the typed usage in ``tests/type_check/typing_core.py``, report every
deliberate mistake in ``tests/type_check/mistakes.py`` on its line with its
code, and ``pyright --verifytypes`` finds the public API typed."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import typing as t

import pytest
import sqlalchemy as sa

from flask_statemgr import State, StateManager

ROOT = pathlib.Path(__file__).parents[2]
TYPE_CHECK = ROOT / "tests" / "type_check"
MISTAKES = TYPE_CHECK / "mistakes.py"

#: ``# error: <mypy code> <pyright rule>`` at the end of a mistake's line
MARK = re.compile(r"#\s*error:\s*(?P<mypy>[\w-]+)\s+(?P<pyright>\w+)\s*$")


def run(*command: str, cwd: pathlib.Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )


def mypy(*paths: pathlib.Path) -> tuple[int, list[tuple[int, str]], str]:
    """Run mypy with the project's configuration: its status, the (line,
    code) of each error in ``paths``, and its output."""
    process = run("mypy", "--config-file", "pyproject.toml", *map(str, paths), MYPYPATH=str(TYPE_CHECK))
    output = process.stdout + process.stderr
    errors = [(int(line), code) for line, code in re.findall(r"^[^:\n]+:(\d+): error: .*\[([\w-]+)\]$", output, re.M)]
    return process.returncode, errors, output


def pyright(*paths: pathlib.Path) -> tuple[int, list[tuple[int, str]], str]:
    """Run pyright with the project's configuration (from the ``pyright``
    package, which installs pyright from npm on first use): its status, the
    (line, rule) of each error, and its report."""
    process = run("pyright", "--outputjson", "--pythonpath", sys.executable, *map(str, paths))
    try:
        report = json.loads(process.stdout)
    except ValueError:
        pytest.fail(f"pyright did not run:\n{process.stdout}{process.stderr}", pytrace=False)
    errors = [
        (d["range"]["start"]["line"] + 1, d.get("rule", ""))
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    ]
    return process.returncode, errors, json.dumps(report["generalDiagnostics"], indent=1)


CHECKERS: dict[str, t.Callable[..., tuple[int, list[tuple[int, str]], str]]] = {
    "mypy": mypy,
    "pyright": pyright,
}


def expected_mistakes() -> dict[int, dict[str, str]]:
    """Line number -> the code each checker must give, from the marks."""
    found = {}
    for number, line in enumerate(MISTAKES.read_text().splitlines(), start=1):
        match = MARK.search(line)
        if match is not None:
            found[number] = match.groupdict()
    return found


@pytest.mark.parametrize("checker", CHECKERS)
def test_package_and_typed_usage_are_clean(checker: str) -> None:
    status, errors, output = CHECKERS[checker]()
    assert status == 0 and not errors, output


@pytest.mark.parametrize("checker", CHECKERS)
def test_each_mistake_is_an_error(checker: str) -> None:
    expected = expected_mistakes()
    status, errors, output = CHECKERS[checker](MISTAKES)
    assert status == 1, output
    reported: dict[int, set[str]] = {}
    for line, code in errors:
        reported.setdefault(line, set()).add(code)
    missed = {n: e[checker] for n, e in expected.items() if e[checker] not in reported.get(n, set())}
    unexpected = {n: codes for n, codes in reported.items() if n not in expected}
    assert not missed and not unexpected, (missed, unexpected, output)


def test_public_api_is_typed(tmp_path: pathlib.Path) -> None:
    # outside the project, so pyright checks the package as a user's
    # checker sees it (through the import path), not as project sources
    process = run(
        "pyright",
        "--verifytypes",
        "flask_statemgr",
        "--ignoreexternal",
        "--outputjson",
        "--pythonpath",
        sys.executable,
        cwd=tmp_path,
        PYTHONPATH=str(ROOT),
    )
    report = json.loads(process.stdout)["typeCompleteness"]
    unknown = [s["name"] for s in report["symbols"] if s["isExported"] and not s["isTypeKnown"]]
    assert report["packageRootDirectory"] == str(ROOT / "flask_statemgr")
    assert report["completenessScore"] >= 0.95, unknown


class Publication(StateManager):
    DRAFT = State(1, "Draft")
    LIVE = State(2, "Live")


@pytest.mark.parametrize(
    "use",
    [
        lambda: sa.select(sa.column("x")).where(Publication.DRAFT),
        lambda: sa.and_(Publication.DRAFT, sa.true()),
        lambda: ~Publication.DRAFT,
        lambda: Publication.DRAFT & Publication.LIVE,
        lambda: Publication.DRAFT | sa.true(),
    ],
    ids=["where", "and_", "invert", "and", "or"],
)
def test_a_state_of_the_manager_in_sql_names_the_right_spelling(use: t.Callable[[], object]) -> None:
    # typed as SQL (it is what ``Model.state.DRAFT`` is typed as), but not
    # bound to a model
    with pytest.raises(
        TypeError, match=r"Publication\.DRAFT> is not bound to a model.*Model\.<manager attribute>\.DRAFT"
    ):
        use()


def test_two_states_of_the_manager_still_make_a_group() -> None:
    group = Publication.DRAFT | Publication.LIVE
    assert group.is_group and group.members == {Publication.DRAFT, Publication.LIVE}
