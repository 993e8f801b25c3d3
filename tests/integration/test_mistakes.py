"""What a person is told when a declaration, a loader or the submitted data
is wrong (issue 19): binding mistakes at mapper configuration, naming the
model and attribute; loaders whose answers are checked; fields named."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from flask_statemgr import LoaderError, State, StateManager, Transition
from flask_statemgr.declaration import cascade_links, resolve_cascade


class DocState(StateManager):
    DRAFT = State(1, "Draft")
    PUBLISHED = State(2, "Published")
    DELETED = State(3, "Deleted")
    publish = Transition(DRAFT, PUBLISHED, "Publish")
    delete = Transition({DRAFT, PUBLISHED}, DELETED, "Delete", cascade={"pages": "delete"})


class PageState(StateManager):
    LIVE = State(1, "Live")
    GONE = State(2, "Gone")
    remove = Transition(LIVE, GONE, "Remove")


def configure(base: type[orm.DeclarativeBase]) -> None:
    base.registry.configure()


def test_misspelt_column_is_reported_at_configuration() -> None:
    class Base(orm.DeclarativeBase):
        pass

    class Doc(Base):
        __tablename__ = "doc_misspelt"
        id: Mapped[int] = mapped_column(primary_key=True)
        _state: Mapped[int] = DocState.column(default=DocState.DRAFT)
        state = DocState("_sate")

    with pytest.raises(
        TypeError, match=r"Doc\.state: DocState\('_sate'\) names no column of Doc; did you mean '_state'\?"
    ):
        configure(Base)


def test_cascade_to_a_missing_transition_is_reported_at_configuration() -> None:
    class Base(orm.DeclarativeBase):
        pass

    class Doc(Base):
        __tablename__ = "doc_cascade"
        id: Mapped[int] = mapped_column(primary_key=True)
        _state: Mapped[int] = DocState.column(default=DocState.DRAFT)
        state = DocState("_state")
        pages: Mapped[list[Page]] = orm.relationship()

    class Page(Base):
        __tablename__ = "page_cascade"
        id: Mapped[int] = mapped_column(primary_key=True)
        doc_id: Mapped[int] = mapped_column(sa.ForeignKey("doc_cascade.id"))
        _state: Mapped[int] = PageState.column(default=PageState.LIVE)
        # PageState has ``remove``, not ``delete``
        state = PageState("_state")

    with pytest.raises(
        TypeError, match=r"Doc\.state\.delete: cascade 'pages': cascade target 'delete': no manager on Page"
    ):
        configure(Base)


def test_requires_path_to_a_column_is_reported_at_configuration() -> None:
    class Base(orm.DeclarativeBase):
        pass

    class NoteState(StateManager):
        OPEN = State(1, "Open")
        DONE = State(2, "Done")
        finish = Transition(OPEN, DONE, "Finish", requires={"title": OPEN})

    class Note(Base):
        __tablename__ = "note_requires"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(default="")
        _state: Mapped[int] = NoteState.column(default=NoteState.OPEN)
        state = NoteState("_state")

    with pytest.raises(
        TypeError, match=r"Note\.state\.finish: requires 'title': 'title' is not a state manager of Note"
    ):
        configure(Base)


def test_cascade_links_are_resolved_once_for_every_reader() -> None:
    class Base(orm.DeclarativeBase):
        pass

    class Doc(Base):
        __tablename__ = "doc_links"
        id: Mapped[int] = mapped_column(primary_key=True)
        _state: Mapped[int] = DocState.column(default=DocState.DRAFT)
        state = DocState("_state")
        pages: Mapped[list[Page]] = orm.relationship()

    class PageDeleting(StateManager):
        LIVE = State(1, "Live")
        GONE = State(2, "Gone")
        delete = Transition(LIVE, GONE, "Delete")

    class Page(Base):
        __tablename__ = "page_links"
        id: Mapped[int] = mapped_column(primary_key=True)
        doc_id: Mapped[int] = mapped_column(sa.ForeignKey("doc_links.id"))
        _state: Mapped[int] = PageDeleting.column(default=PageDeleting.LIVE)
        state = PageDeleting("_state")

    configure(Base)
    (link,) = cascade_links(Doc)
    assert (link.manager, link.transition, link.attribute) == ("state", DocState.delete, "pages")
    assert (link.model, link.target_manager, link.target) == (Page, "state", PageDeleting.delete)
    assert resolve_cascade(Page, "delete") is resolve_cascade(Page, "delete")


def test_missing_cascade_attribute_is_named_at_perform_time() -> None:
    # a manager reused by a model without the relationship: only performing
    # the cascade needs it
    class Loose:
        state = DocState("_state")

        def __init__(self) -> None:
            self._state = DocState.DRAFT.value

    with pytest.raises(TypeError, match="cascade 'pages': Loose has no attribute 'pages'"):
        Loose().state.delete()


class GuardedState(StateManager):
    OPEN = State(1, "Open")
    CLOSED = State(2, "Closed")
    close = Transition(OPEN, CLOSED, "Close", roles={"owner"})


class Guarded:
    state = GuardedState("_state")

    def __init__(self, roles: object) -> None:
        self._state = GuardedState.OPEN.value
        self.roles = roles

    def roles_for(self, user: object) -> object:
        return self.roles


@pytest.mark.parametrize("answer", [None, ["owner"], "owner", {1}])
def test_a_roles_loader_answering_no_set_of_names_is_a_loader_error(answer: object) -> None:
    obj = Guarded(answer)
    with pytest.raises(
        LoaderError, match=r"The roles loader .*else Guarded\.roles_for\) returned .* must return a set"
    ):
        obj.state.close.check("alice")
    assert obj.state.value == GuardedState.OPEN.value
    assert LoaderError.http_status == 500 and issubclass(LoaderError, TypeError)


def test_a_roles_loader_answering_a_set_is_used() -> None:
    assert Guarded(frozenset({"owner"})).state.close.is_available("alice")
    assert not Guarded(set()).state.close.is_available("alice")


def test_validation_failed_names_the_fields() -> None:
    from flask_statemgr import ValidationFailed

    error = ValidationFailed(errors={"title": ["This field is required."], "at": ["Not a date.", "Too early."]})
    assert str(error) == "The submitted data is not valid: title: This field is required.; at: Not a date. Too early."
    assert str(ValidationFailed()) == "The submitted data is not valid"


def test_a_broken_roles_loader_is_a_500_problem_with_a_useful_title(
    api: t.Any, caplog: pytest.LogCaptureFixture
) -> None:
    api.statemgr.roles_loader(lambda obj, user: None)
    response = api.test_client().get("/_statemgr/objects/project/1", headers={"X-User": "alice"})
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["title"] == "The application could not tell who may do this"
    assert "The roles loader" in caplog.text and "returned None for Project 1" in caplog.text
