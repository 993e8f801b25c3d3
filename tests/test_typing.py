"""Type checkers see states and transitions: mypy accepts the typed usage in
``tests/type_check`` and reports typos and misuse as errors."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).parent.parent
TYPE_CHECK = ROOT / "tests" / "type_check"

#: each line that must fail, and the error mypy must give for it
MISTAKES = {
    "ProjectState.DRAFTT": '"type[ProjectState]" has no attribute "DRAFTT"',
    "Project.state.DRAFTT": '"ProjectState" has no attribute "DRAFTT"; maybe "DRAFT"?',
    "project.state.publsh": '"ProjectState" has no attribute "publsh"; maybe "publish"?',
    "project.state.publish.chek()": '"BoundTransition" has no attribute "chek"; maybe "check"?',
    "project.state.DRAFT.value": '"StateCheck" has no attribute "value"',
    "project.state.transitions(None)['publish'].sources": '"BoundTransition" has no attribute "sources"',
    "ProjectState.publish(None)": '"Transition" not callable',
    "project.state = ProjectState.DRAFT": (
        'Incompatible types in assignment (expression has type "State", variable has type "Never")'
    ),
    "sa.select(Project).where(ProjectState.DRAFT)": (
        'Argument 1 to "where" of "Select" has incompatible type "State"'
    ),
}


def mypy(*paths: str | pathlib.Path) -> tuple[int, str]:
    """Run mypy with the project's configuration; its status and output."""
    env = {**os.environ, "MYPYPATH": str(TYPE_CHECK)}
    process = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", *map(str, paths)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    return process.returncode, process.stdout + process.stderr


def test_typed_usage_passes() -> None:
    status, output = mypy(TYPE_CHECK)
    assert status == 0, output
    assert output.startswith("Success: no issues found")


def test_typos_and_misuse_are_errors(tmp_path: pathlib.Path) -> None:
    lines = [
        "import sqlalchemy as sa",
        "from typing_core import Project, ProjectState",
        "",
        "def mistakes(project: Project) -> None:",
        *(f"    {mistake}" for mistake in MISTAKES),
    ]
    source = tmp_path / "mistakes.py"
    source.write_text("\n".join(lines) + "\n")
    status, output = mypy(source)
    assert status == 1, output
    # mypy's cache may report an earlier run's path for the same module
    errors = re.findall(r"mistakes\.py:(\d+): error: (.*)", output)
    assert len(errors) == len(MISTAKES), output
    for number, (mistake, message) in enumerate(MISTAKES.items(), start=5):
        assert any(
            int(line) == number and error.startswith(message) for line, error in errors
        ), (mistake, output)
