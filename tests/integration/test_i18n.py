"""Lazy strings and translations (issue 20): the app's titles, labels and
reasons, and the extension's own messages, in each request's locale."""

from __future__ import annotations

import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask_babel import Babel, force_locale

from flask_statemgr import State, StateManager, StateMgr, Transition
from flask_statemgr.extension import statemgr_script
from flask_statemgr.i18n import TRANSLATIONS, client_messages, gettext, ngettext

ROOT = Path(__file__).parents[2]
POT = TRANSLATIONS / "flask_statemgr.pot"
GERMAN = TRANSLATIONS / "de" / "LC_MESSAGES"
CHANGES = ("%(transition)s changes %(num)d object", "%(transition)s changes %(num)d objects")


def test_schema_renders_lazy_titles_and_labels_per_locale(i18n: Flask) -> None:
    client = i18n.test_client()
    english = client.get("/_statemgr/schema?lang=en")
    german = client.get("/_statemgr/schema", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert english.status_code == german.status_code == 200
    states = german.json["managers"]["ArticleState"]["states"]
    assert states["DRAFT"]["title"] == "Entwurf"
    assert states["DRAFT"]["description"] == "Noch nicht sichtbar"
    assert states["PUBLISHED"]["metadata"] == {"section": "Presse"}
    publish = german.json["managers"]["ArticleState"]["transitions"]["publish"]
    assert publish["title"] == "Veröffentlichen"
    summary = publish["form"]["properties"]["summary"]
    assert (summary["title"], summary["description"]) == ("Zusammenfassung", "Eine Zeile für die Titelseite")
    assert publish["form"]["properties"]["kind"]["title"] == "Art"
    assert "Nachricht" in json.dumps(publish["form"]["properties"]["kind"], ensure_ascii=False)
    assert english.json["managers"]["ArticleState"]["transitions"]["publish"]["title"] == "Publish"
    assert english.json["managers"]["ArticleState"]["states"]["DRAFT"]["title"] == "Draft"
    assert german.headers["Content-Language"] == "de"
    assert english.headers["Content-Language"] == "en"
    assert "Accept-Language" in german.headers["Vary"]


def test_schema_etag_revalidates_only_its_own_locale(i18n: Flask) -> None:
    client = i18n.test_client()
    english = client.get("/_statemgr/schema?lang=en")
    german = client.get("/_statemgr/schema?lang=de")
    assert english.headers["ETag"] != german.headers["ETag"]
    cross = client.get("/_statemgr/schema?lang=de", headers={"If-None-Match": english.headers["ETag"]})
    assert cross.status_code == 200
    assert cross.json["managers"]["ArticleState"]["states"]["DRAFT"]["title"] == "Entwurf"
    same = client.get("/_statemgr/schema?lang=de", headers={"If-None-Match": german.headers["ETag"]})
    assert same.status_code == 304
    # French has no catalog, so its text is the English one: the tag still
    # tells the two representations apart
    french = client.get("/_statemgr/schema?lang=fr")
    assert french.data == english.data
    assert french.headers["ETag"] != english.headers["ETag"]
    again = client.get("/_statemgr/schema?lang=fr", headers={"If-None-Match": english.headers["ETag"]})
    assert again.status_code == 200


def test_schema_is_built_once_per_locale(i18n: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from flask_statemgr import extension

    built: list[t.Any] = []
    original = extension.build_schema

    def counting(models: t.Any) -> t.Any:
        built.append(models)
        return original(models)

    monkeypatch.setattr(extension, "build_schema", counting)
    client = i18n.test_client()
    for lang in ("en", "de", "en", "de", "de"):
        assert client.get(f"/_statemgr/schema?lang={lang}").status_code == 200
    assert len(built) == 2
    with i18n.app_context(), force_locale("de"):
        schema = i18n.statemgr.schema()  # type: ignore[attr-defined]
    assert schema["managers"]["ArticleState"]["states"]["DRAFT"]["title"] == "Entwurf"
    assert len(built) == 2


def test_object_json_titles_and_reasons_in_the_locale(i18n: Flask) -> None:
    client = i18n.test_client()
    body = client.get("/_statemgr/objects/article/2?lang=de", headers={"X-User": "editor"}).json
    state = body["managers"]["state"]
    assert state["title"] == "Entwurf"
    publish, unpublish = state["transitions"]["publish"], state["transitions"]["unpublish"]
    assert publish["title"] == "Veröffentlichen"
    # the app's lazy reason refuses (a lazy string is no truthy "pass")
    assert publish["available"] is False
    assert publish["reasons"] == [{"code": "precondition", "message": "Zuerst braucht es einen Titel"}]
    assert unpublish["reasons"] == [
        {"code": "state", "message": "Zurückziehen ist nicht möglich, solange state Entwurf ist"}
    ]
    english = client.get("/_statemgr/objects/article/2?lang=en", headers={"X-User": "editor"}).json
    assert english["managers"]["state"]["transitions"]["unpublish"]["reasons"][0]["message"] == (
        "Unpublish is not possible while state is Draft"
    )


def test_shared_reasons_follow_the_locale_within_one_app_context(i18n: Flask) -> None:
    from i18n_app import Article, db

    from flask_statemgr.api import object_json

    ext = i18n.extensions["statemgr"]
    with i18n.test_request_context("/?lang=en"):
        article = db.session.get(Article, 2)

        def unpublish() -> str:
            body = object_json(ext, ext.exposed["article"], article, None)
            return str(body["managers"]["state"]["transitions"]["unpublish"]["reasons"][0]["message"])

        assert unpublish() == "Unpublish is not possible while state is Draft"
        with force_locale("de"):
            assert unpublish() == "Zurückziehen ist nicht möglich, solange state Entwurf ist"
        assert unpublish() == "Unpublish is not possible while state is Draft"


def test_problem_documents_in_the_locale(i18n: Flask) -> None:
    client = i18n.test_client()
    anonymous = client.post("/_statemgr/objects/article/1/state/publish?lang=de", json={"summary": "x"})
    assert anonymous.status_code == 401
    assert anonymous.mimetype == "application/problem+json"
    problem = anonymous.json
    # the type names the problem in every language; the title is translated
    assert problem["type"] == "urn:statemgr:problem:authentication-required"
    assert problem["title"] == "Anmeldung erforderlich"
    assert problem["reasons"] == [
        {"code": "permission", "message": "Veröffentlichen erfordert die Rolle editor; bitte zuerst anmelden"}
    ]
    refused = client.post(
        "/_statemgr/objects/article/2/state/publish?lang=de",
        json={"summary": "x"},
        headers={"X-User": "editor"},
    )
    assert refused.status_code == 409
    assert refused.json["title"] == "Vorbedingung nicht erfüllt"
    assert refused.json["detail"] == "Zuerst braucht es einen Titel"
    bad = client.post(
        "/_statemgr/objects/article/1/state/publish?lang=de",
        data="[1]",
        content_type="application/json",
        headers={"X-User": "editor"},
    )
    assert (bad.status_code, bad.json["title"], bad.json["detail"]) == (
        400,
        "Ungültige Anfrage",
        "Der JSON-Inhalt muss ein Objekt sein",
    )


@pytest.mark.parametrize(
    ("enabled", "required"), [(True, "Dieses Feld wird benötigt."), (False, "This field is required.")]
)
def test_wtforms_messages_follow_the_locale(i18n: Flask, enabled: bool, required: str) -> None:
    i18n.config["WTF_I18N_ENABLED"] = enabled
    client = i18n.test_client()
    response = client.post(
        "/_statemgr/objects/article/1/state/publish?lang=de",
        json={"summary": "", "kind": "poem"},
        headers={"X-User": "editor"},
    )
    assert response.status_code == 422
    assert response.json["title"] == "Validierung fehlgeschlagen"
    assert response.json["errors"]["summary"] == [required]
    assert response.json["errors"]["kind"] == ["Keine gültige Auswahl." if enabled else "Not a valid choice."]


def test_flask_wtf_form_messages_follow_the_locale(tmp_path: Path) -> None:
    from flask_wtf import FlaskForm
    from wtforms import StringField
    from wtforms.validators import DataRequired

    from flask_statemgr.forms import validate_form_data

    class Named(FlaskForm):
        name = StringField("Name", validators=[DataRequired()])

    app = Flask(__name__)
    Babel(app, locale_selector=lambda: "de")
    with app.test_request_context():
        _, errors = validate_form_data(Named, {"name": ""})
    assert errors == {"name": ["Dieses Feld wird benötigt."]}


def test_pages_in_the_locale(i18n: Flask) -> None:
    client = i18n.test_client()
    page = client.get("/_statemgr/pages/article/1/state/publish?lang=de", headers={"X-User": "editor"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert '<html lang="de">' in html
    assert "<h1>Veröffentlichen</h1>" in html
    assert (
        '<label for="summary">Zusammenfassung<span class="statemgr-required" aria-hidden="true"> *</span></label>'
        in html
    )
    assert "Zurück</a>" in html
    posted = client.post(
        "/_statemgr/pages/article/1/state/publish?lang=de",
        data={"summary": "", "kind": "news"},
        headers={"X-User": "editor"},
    )
    assert posted.status_code == 422
    assert 'data-field="summary">Dieses Feld wird benötigt.</p>' in posted.get_data(as_text=True)
    refused = client.get("/_statemgr/pages/article/2/state/publish?lang=de", headers={"X-User": "editor"})
    assert refused.status_code == 409
    assert '<li data-code="precondition">Zuerst braucht es einen Titel</li>' in refused.get_data(as_text=True)
    done = client.post(
        "/_statemgr/pages/article/1/state/publish?lang=de",
        data={"summary": "Neu", "kind": "news"},
        headers={"X-User": "editor"},
    )
    assert done.status_code == 302
    with client.session_transaction() as session:
        assert session["_flashes"] == [("success", "Veröffentlichen: erledigt")]


def test_english_without_flask_babel(tmp_path: Path) -> None:
    """No Flask-Babel: the extension speaks English, and any object whose
    ``str()`` is the text works as a title."""

    class Lazy:
        def __init__(self, text: str) -> None:
            self.text = text

        def __str__(self) -> str:
            return self.text

        def __html__(self) -> str:
            return self.text

    class Plain(StateManager):
        OPEN = State(1, Lazy("Open"))  # type: ignore[arg-type]
        CLOSED = State(2, Lazy("Closed"))  # type: ignore[arg-type]
        close = Transition(OPEN, CLOSED, Lazy("Close"), roles={"admin"})  # type: ignore[arg-type]

    from flask_statemgr.model_json import manager_json

    app = Flask(__name__)
    StateMgr(app)
    with app.test_request_context():
        assert gettext("Back") == "Back"
        assert ngettext(*CHANGES, 2, transition="Close") == "Close changes 2 objects"
        rendered = json.loads(json.dumps(manager_json(Plain)))
    assert rendered["states"]["OPEN"]["title"] == "Open"
    assert rendered["transitions"]["close"]["title"] == "Close"


def test_the_client_gets_its_words_in_the_locale(i18n: Flask) -> None:
    with i18n.test_request_context("/?lang=de"):
        german = client_messages()
        tag = str(statemgr_script())
    # its own words from the extension's catalog, its checks' from WTForms'
    assert german["Cancel"] == "Abbrechen"
    assert german["This field is required."] == "Dieses Feld wird benötigt."
    assert german["Field cannot be longer than %(max)d character."] == [
        "Feld kann nicht länger als %(max)d Zeichen sein.",
        "Feld kann nicht länger als %(max)d Zeichen sein.",
    ]
    assert "data-messages=" in tag and "Abbrechen" in tag
    with i18n.test_request_context("/?lang=en"):
        # English is the client's own: nothing to send
        assert client_messages() == {} and "data-messages" not in str(statemgr_script())


def test_german_plural_forms(i18n: Flask) -> None:
    with i18n.test_request_context("/?lang=de"):
        one = ngettext(*CHANGES, 1, transition="X")
        many = ngettext(*CHANGES, 3, transition="X")
    assert (one, many) == ("X ändert 1 Objekt", "X ändert 3 Objekte")


def test_an_app_overrides_messages(i18n: Flask, tmp_path: Path) -> None:
    from i18n_app import compile_catalog

    # the app's own flask_statemgr catalog wins over the shipped one
    compile_catalog(tmp_path / "translations", "de", "flask_statemgr", {"Back": "Zur Übersicht"})
    i18n.config["STATEMGR_MESSAGES"] = {"Submit": "Go"}
    client = i18n.test_client()
    german = client.get("/_statemgr/pages/article/1/state/publish?lang=de", headers={"X-User": "editor"})
    assert "Zur Übersicht</a>" in german.get_data(as_text=True)
    with i18n.test_request_context("/?lang=de"):
        assert gettext("Submit") == "Go"
        # the rest of the shipped catalog still applies
        assert gettext("State conflict") == "Zustandskonflikt"


def test_cli_renders_in_a_locale(i18n: Flask) -> None:
    runner = i18n.test_cli_runner()
    german = runner.invoke(args=["statemgr", "schema", "--locale", "de"])
    assert german.exit_code == 0, german.output
    assert json.loads(german.output)["managers"]["ArticleState"]["states"]["DRAFT"]["title"] == "Entwurf"
    assert '"Veröffentlichen"' in german.output
    english = runner.invoke(args=["statemgr", "schema"])
    assert json.loads(english.output)["managers"]["ArticleState"]["states"]["DRAFT"]["title"] == "Draft"
    graph = runner.invoke(args=["statemgr", "graph", "--locale", "de"])
    assert graph.exit_code == 0, graph.output
    assert "ArticleState_DRAFT : Entwurf" in graph.output
    assert "ArticleState_DRAFT --> ArticleState_PUBLISHED : Veröffentlichen [editor]" in graph.output
    dot = runner.invoke(args=["statemgr", "graph", "--format", "dot"])
    assert '[label="Draft"]' in dot.output
    history = runner.invoke(args=["statemgr", "history", "article", "1"])
    assert history.exit_code == 0, history.output
    unknown = runner.invoke(args=["statemgr", "schema", "--locale", "xx_YY"])
    assert unknown.exit_code == 2
    assert "--locale" in unknown.output


def test_cli_locale_needs_flask_babel() -> None:
    app = Flask(__name__)
    StateMgr(app)
    result = app.test_cli_runner().invoke(args=["statemgr", "schema", "--locale", "de"])
    assert result.exit_code == 2
    assert "needs Flask-Babel" in result.output


def test_catalog_template_is_what_pybabel_extracts(tmp_path: Path) -> None:
    """The README's extraction command, run with the real pybabel, finds
    exactly the messages of the .pot in the repo."""
    out = tmp_path / "flask_statemgr.pot"
    subprocess.run(
        [
            Path(sys.executable).parent / "pybabel",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "statemgr_gettext",
            "--no-location",
            "--sort-output",
            "-o",
            str(out),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with open(out, "rb") as f:
        extracted = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(f) if m.id}
    with open(POT, "rb") as f:
        committed = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(f) if m.id}
    assert extracted == committed
    assert "%(object)s changed state while the transition ran" in committed
    assert "Back" in committed


def test_german_catalog_is_complete_and_compiled() -> None:
    with open(POT, "rb") as f:
        template = {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(f) if m.id}
    with open(GERMAN / "flask_statemgr.po", "rb") as f:
        po = {m.id if isinstance(m.id, str) else tuple(m.id): m.string for m in read_po(f) if m.id}
    assert set(po) == template
    assert all(po.values()), [k for k, v in po.items() if not v]
    with open(GERMAN / "flask_statemgr.mo", "rb") as f:
        mo = {m.id if isinstance(m.id, str) else tuple(m.id): m.string for m in read_mo(f) if m.id}
    # the committed .mo is the .po compiled (pybabel compile after editing)
    assert {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in mo.items()} == {
        k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in po.items()
    }
