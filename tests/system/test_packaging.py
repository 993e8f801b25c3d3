from __future__ import annotations

import ast
import email.parser
import importlib.metadata
import subprocess
import sys
import tarfile
import typing as t
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once for the tests that read it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
    )
    (built,) = out.glob("flask_statemgr-*.whl")
    return built


def test_wheel_carries_and_serves_templates_and_static(wheel: Path, tmp_path: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "flask_statemgr/py.typed" in names
    assert "flask_statemgr/templates/statemgr/transition.html" in names
    assert "flask_statemgr/templates/statemgr/macros.html" in names
    assert "flask_statemgr/static/statemgr.js" in names
    assert "flask_statemgr/translations/de/LC_MESSAGES/flask_statemgr.mo" in names
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
    )
    # Run from the installed copy only (not the checkout) and fetch the
    # static file and a page rendered from the packaged templates.
    script = """
import sys
sys.path.insert(0, sys.argv[1])
import flask_statemgr
assert flask_statemgr.__file__.startswith(sys.argv[1]), flask_statemgr.__file__
from flask import Flask, render_template_string
from flask_statemgr import StateMgr
app = Flask("installed")
StateMgr(app)
client = app.test_client()
js = client.get("/_statemgr/static/statemgr.js")
assert js.status_code == 200 and b"StateClient" in js.data, js.status_code
with app.test_request_context():
    html = render_template_string(
        '{% from "statemgr/macros.html" import transition_form %}{{ transition_form(None, "/x") }}'
    )
assert 'action="/x"' in html, html
# the compiled German catalog travels in the wheel and is found there
from flask_babel import Babel
from flask_statemgr.i18n import gettext
german = Flask("german")
Babel(german, locale_selector=lambda: "de")
StateMgr(german)
with german.test_request_context():
    assert gettext("State conflict") == "Zustandskonflikt", gettext("State conflict")
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, str(target)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_wheel_metadata_declares_license_and_dependencies(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    (license_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert archive.read(license_name) == (ROOT / "LICENSE").read_bytes()
    assert b"BSD 3-Clause License" in archive.read(license_name)
    (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = email.parser.BytesParser().parsebytes(archive.read(metadata_name))
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert metadata.get_all("License-File") == ["LICENSE"]
    requires = [Requirement(r) for r in metadata.get_all("Requires-Dist")]
    core = {canonicalize_name(r.name) for r in requires if r.marker is None}
    assert "blinker" in core
    (postgres,) = [r for r in requires if r.marker is not None and r.marker.evaluate({"extra": "postgres"})]
    # a library leaves psycopg's implementation (binary, c, or pure Python
    # on the system's libpq) to the app: psycopg's own advice
    assert (postgres.name, postgres.extras) == ("psycopg", set())
    for module, needed in imported_distributions().items():
        allowed = core | ({"alembic"} if module == "alembic" else set())
        assert needed <= allowed, f"flask_statemgr/{module}.py imports undeclared {needed - allowed}"


def test_sdist_carries_the_license(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(tmp_path)], cwd=ROOT, check=True
    )
    (sdist,) = tmp_path.glob("flask_statemgr-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        assert f"{sdist.name.removesuffix('.tar.gz')}/LICENSE" in names
        (info,) = [n for n in names if n.endswith("/PKG-INFO")]
        metadata = email.parser.BytesParser().parsebytes(t.cast(t.IO[bytes], archive.extractfile(info)).read())
    assert metadata["License-Expression"] == "BSD-3-Clause"


def imported_distributions() -> dict[str, set[str]]:
    """The distributions each module of the package imports when it is
    imported (module-level imports outside ``if TYPE_CHECKING``)."""
    providers = importlib.metadata.packages_distributions()
    found = {}
    for path in sorted((ROOT / "flask_statemgr").glob("*.py")):
        names = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        third_party = names - set(sys.stdlib_module_names) - {"__future__"}
        found[path.stem] = {canonicalize_name(d) for n in third_party for d in providers[n]}
    return found
