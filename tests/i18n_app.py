"""An app whose titles, labels and reasons are all Flask-Babel lazy strings,
in English and German (``?lang=de`` or ``Accept-Language``)."""

from __future__ import annotations

import typing as t
from pathlib import Path

import sqlalchemy as sa
from apps import database
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from flask import Flask, g, has_request_context, request
from flask_babel import Babel, lazy_gettext
from sqlalchemy.orm import Mapped, mapped_column
from wtforms import Form, SelectField, StringField
from wtforms.validators import DataRequired

from flask_statemgr import State, StateManager, StateMgr, Transition

db = database()
#: the translations directory comes from the caller, as
#: ``BABEL_TRANSLATION_DIRECTORIES``
CONFIG: dict[str, t.Any] = {}

#: the app's own German catalog (the "messages" domain)
APP_GERMAN = {
    "Draft": "Entwurf",
    "Not visible yet": "Noch nicht sichtbar",
    "Published": "Veröffentlicht",
    "Publish": "Veröffentlichen",
    "Unpublish": "Zurückziehen",
    "Summary": "Zusammenfassung",
    "One line for the front page": "Eine Zeile für die Titelseite",
    "Kind": "Art",
    "News": "Nachricht",
    "Essay": "Essay",
    "A title is needed first": "Zuerst braucht es einen Titel",
    "Press": "Presse",
}


class PublishForm(Form):
    summary = StringField(
        lazy_gettext("Summary"),
        validators=[DataRequired()],
        description=lazy_gettext("One line for the front page"),
    )
    kind = SelectField(lazy_gettext("Kind"), choices=[("news", lazy_gettext("News")), ("essay", lazy_gettext("Essay"))])


class ArticleState(StateManager):
    DRAFT = State(1, lazy_gettext("Draft"), description=lazy_gettext("Not visible yet"))
    PUBLISHED = State(2, lazy_gettext("Published"), section=lazy_gettext("Press"))

    publish = Transition(DRAFT, PUBLISHED, lazy_gettext("Publish"), roles={"editor"}, form=PublishForm)
    unpublish = Transition(PUBLISHED, DRAFT, lazy_gettext("Unpublish"), roles={"editor"})


class Article(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "article"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    _state: Mapped[int] = ArticleState.column(default=ArticleState.DRAFT)
    state = ArticleState("_state")

    def __str__(self) -> str:
        return self.title or f"Article {self.id}"

    def roles_for(self, user: str | None) -> set[str]:
        return {"editor"} if user == "editor" else set()

    @ArticleState.publish.precondition
    def _has_title(self) -> bool | t.Any:
        return bool(self.title) or lazy_gettext("A title is needed first")


def compile_catalog(directory: Path, locale: str, domain: str, messages: t.Mapping[str, str]) -> None:
    """``<directory>/<locale>/LC_MESSAGES/<domain>.mo`` holding ``messages``."""
    catalog = Catalog(locale=locale, domain=domain)
    for msgid, msgstr in messages.items():
        catalog.add(msgid, msgstr)
    folder = directory / locale / "LC_MESSAGES"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{domain}.mo", "wb") as f:
        write_mo(f, catalog)


def select_locale() -> str | None:
    # the CLI renders without a request: the default locale, or --locale
    if not has_request_context():
        return None
    return request.args.get("lang") or request.accept_languages.best_match(["en", "de"])


def setup(app: Flask, statemgr: StateMgr) -> None:
    """Expose the articles, with the app's German catalog compiled into its
    ``BABEL_TRANSLATION_DIRECTORIES``."""
    compile_catalog(Path(app.config["BABEL_TRANSLATION_DIRECTORIES"]), "de", "messages", APP_GERMAN)
    Babel(app, locale_selector=select_locale)
    statemgr.expose(Article)

    @app.before_request
    def load_user() -> None:
        g.user = request.headers.get("X-User")
