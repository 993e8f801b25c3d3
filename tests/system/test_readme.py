"""The README's examples run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example(name: str) -> str:
    """The Python block after the ``<!-- readme-example: name -->`` marker."""
    found = re.search(
        rf"<!-- readme-example: {re.escape(name)} -->\n```python\n(.*?)```", README.read_text(), re.S
    )
    assert found is not None, f"README has no example {name!r}"
    return found.group(1)


@pytest.mark.parametrize("name", ["cascade", "coaster"])
def test_example_runs_as_written(tmp_path: Path, name: str) -> None:
    script = tmp_path / "example.py"
    script.write_text(readme_example(name))
    # a process of its own: each example declares models on its own Base
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_translations_example_runs_as_written(tmp_path: Path) -> None:
    script = tmp_path / "translations.py"
    script.write_text(readme_example("translations"))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
