"""The README's examples run as written.

Every Python block in README.md follows a marker: ``<!-- readme-example:
NAME -->`` (the blocks of one name run in order as one script, as a reader
following the README would type them) or ``<!-- readme-fragment: why -->``
for the few that cannot run here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"

BLOCK = re.compile(r"(?:<!-- readme-(example|fragment): ([^>]*?) -->\n)?```python\n(.*?)```", re.DOTALL)


def readme_blocks() -> list[tuple[str | None, str, str]]:
    """Each Python block as (marker kind, marker text, code)."""
    return [(kind or None, label, code) for kind, label, code in BLOCK.findall(README.read_text())]


def readme_example(name: str) -> str:
    """The blocks marked ``<!-- readme-example: name -->``, in order, as one script."""
    code = [code for kind, label, code in readme_blocks() if kind == "example" and label == name]
    assert code, f"README has no example {name!r}"
    return "\n".join(code)


EXAMPLES = sorted({label for kind, label, _ in readme_blocks() if kind == "example"})


def test_every_python_block_is_marked() -> None:
    unmarked = [code.splitlines()[0] for kind, _, code in readme_blocks() if kind is None]
    assert unmarked == []
    # a fragment says why it cannot run
    assert all(label.strip() for kind, label, _ in readme_blocks() if kind == "fragment")


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_as_written(tmp_path: Path, name: str) -> None:
    script = tmp_path / "example.py"
    script.write_text(readme_example(name))
    # a process of its own: each example declares models on its own Base
    done = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
