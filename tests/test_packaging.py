from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_wheel_carries_and_serves_templates_and_static(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
    )
    (wheel,) = tmp_path.glob("flask_statemgr-*.whl")
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
    html = render_template_string('{% from "statemgr/macros.html" import transition_form %}{{ transition_form(None, "/x") }}')
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
