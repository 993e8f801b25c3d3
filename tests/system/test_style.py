"""The project's formatter, linter and import contracts, run as CI runs
them: a failure names the file and the rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ["flask_statemgr", "tests", "bench", "example_app"]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "format", "--check", *SOURCES],
        ["ruff", "check", *SOURCES],
        # the layers and the absence of import cycles (pyproject.toml,
        # [tool.importlinter])
        ["lint-imports"],
    ],
    ids=["ruff-format", "ruff-check", "import-linter"],
)
def test_clean(command: list[str]) -> None:
    done = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
