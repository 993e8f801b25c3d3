"""Bound transitions before they run: availability, the reasons and codes of
every check, roles and permissions, listings, plans, and the error classes."""

from __future__ import annotations

import typing as t

import pytest
from core_models import (
    ALICE,
    BOB,
    CAROL,
    STAMP,
    AnonymousUser,
    Chapter,
    ChapterState,
    Project,
    ProjectState,
    User,
)

from flask_statemgr import (
    Availability,
    BoundTransition,
    ConfirmationRequired,
    PermissionDenied,
    Plan,
    PreconditionFailed,
    Reason,
    RequirementsUnmet,
    State,
    StateConflict,
    StateManager,
    StateMgrError,
    Transition,
    TransitionError,
    ValidationFailed,
)


def _project(**kwargs: t.Any) -> Project:
    kwargs.setdefault("title", "Project")
    kwargs.setdefault("_state", 1)
    kwargs.setdefault("_review", "pending")
    kwargs.setdefault("owner_id", ALICE.id)
    return Project(**kwargs)


def _failure(bound: BoundTransition, user: t.Any, error: type[TransitionError], status: int) -> list[Reason]:
    """Assert ``check`` and performing agree on the failure; its reasons."""
    assert bound.is_available(user) is False
    availability = bound.check(user)
    assert isinstance(availability, Availability)
    assert not availability.ok and not availability
    assert type(availability.error) is error
    with pytest.raises(error) as info:
        bound(user)
    assert info.value.http_status == status
    assert info.value.reasons == availability.reasons
    return availability.reasons


def test_available() -> None:
    project = _project()
    assert project.state.publish.is_available(BOB)
    availability = project.state.publish.check(BOB)
    assert availability.ok and availability and availability.reasons == []
    assert availability.error is None


def test_state_check() -> None:
    project = _project(_state=3)
    reasons = _failure(project.state.publish, BOB, StateConflict, 409)
    assert reasons == [Reason("state", "Publish is not possible while state is Withdrawn")]


def test_state_check_comes_first() -> None:
    # carol may not publish either, but the state is what is reported
    project = _project(_state=2, title="")
    reasons = _failure(project.state.publish, CAROL, StateConflict, 409)
    assert [r.code for r in reasons] == ["state"]


def test_conditional_source() -> None:
    project = _project(_state=2)
    _failure(project.state.unpin, ALICE, StateConflict, 409)
    project.pinned = True
    assert project.state.unpin.is_available(ALICE)


def test_group_source_with_a_conditional_member() -> None:
    project = _project(_state=2)
    # REDRAFTABLE is WITHDRAWN or LIVE; a published project not yet live is neither
    _failure(project.state.redraft, ALICE, StateConflict, 409)
    project.published_at = STAMP
    assert project.state.redraft.is_available(ALICE)
    project._state = 3
    project.published_at = None
    assert project.state.redraft.is_available(ALICE)
    # a set of sources with a conditional member works the same way
    project._state = 2
    assert not project.state.archive.is_available(ALICE)
    project.published_at = STAMP
    assert project.state.archive.is_available(ALICE)


def test_requires() -> None:
    project = _project()
    reasons = _failure(project.state.submit, ALICE, RequirementsUnmet, 409)
    assert reasons == [Reason("requires", "The review must be approved first")]
    project._review = "approved"
    assert project.state.submit.is_available(ALICE)


def test_requires_through_a_relationship() -> None:
    chapter = Chapter(project=_project(_state=2), _state=1)

    class Edition(StateManager):
        DRAFT = State(1)
        PRINTED = State(2)
        press = Transition(DRAFT, PRINTED, "Print", requires={"chapter.project.state": ProjectState.PUBLISHED})

    class Book:
        edition = Edition("_edition")

        def __init__(self, chapter: Chapter | None) -> None:
            self._edition = 1
            self.chapter = chapter

    assert Book(chapter).edition.press.is_available()
    chapter.project._state = 1
    reasons = _failure(Book(chapter).edition.press, None, RequirementsUnmet, 409)
    assert reasons == [Reason("requires", "The chapter's project must be published first")]
    # a missing related object is an unmet requirement, not a crash
    assert not Book(None).edition.press.is_available()


def test_roles() -> None:
    project = _project()
    reasons = _failure(project.state.publish, CAROL, PermissionDenied, 403)
    assert reasons == [Reason("permission", "Publish needs the role editor")]
    assert project.state.publish.is_available(BOB)
    # roles come from obj.roles_for(user): bob is an owner elsewhere, not here
    owner = User(2, "bob", frozenset({"owner"}))
    _failure(project.state.delete, owner, PermissionDenied, 403)
    assert project.state.delete.is_available(ALICE)
    assert Project(owner_id=2, _state=1).state.delete.is_available(owner)


@pytest.mark.parametrize("anonymous", [None, AnonymousUser()])
def test_anonymous_is_401(anonymous: t.Any) -> None:
    project = _project()
    reasons = _failure(project.state.publish, anonymous, PermissionDenied, 401)
    assert reasons[0].code == "permission"
    # the reason a signed-in user would read, then the hint
    assert reasons[0].message == "Publish needs the role editor; log in first"
    error = project.state.publish.check(anonymous).error
    assert isinstance(error, PermissionDenied) and error.anonymous
    assert error.title == "Authentication required"
    # a transition without roles is open to anyone
    project._state = 2
    project.pinned = True
    assert project.state.unpin.is_available(anonymous)


def test_permission_functions() -> None:
    class Vault(StateManager):
        LOCKED = State(0, "Locked")
        OPEN = State(1, "Open")
        unlock = Transition(LOCKED, OPEN, "Unlock")
        lock = Transition(OPEN, LOCKED, "Lock")

    calls: list[tuple[t.Any, t.Any]] = []

    @Vault.unlock.permission
    def _holds_key(obj: t.Any, user: t.Any) -> bool:
        calls.append((obj, user))
        return user is not None and user.name in obj.keyholders

    class Bank:
        vault = Vault("_vault")

        def __init__(self, *keyholders: str) -> None:
            self._vault = 0
            self.keyholders = keyholders

    bank = Bank("alice")
    assert bank.vault.unlock.is_available(ALICE)
    assert calls == [(bank, ALICE)]
    reasons = _failure(bank.vault.unlock, BOB, PermissionDenied, 403)
    assert reasons == [Reason("permission", "You may not unlock this")]
    _failure(bank.vault.unlock, None, PermissionDenied, 401)
    # the decorated function stays a plain function
    assert _holds_key(bank, ALICE) is True
    assert Vault.unlock.permissions == [_holds_key]
    assert Vault.lock.permissions == []


def test_preconditions() -> None:
    project = _project(title="")
    reasons = _failure(project.state.publish, BOB, PreconditionFailed, 409)
    assert reasons == [Reason("precondition", "A title is required")]
    # a precondition returning False gets a message naming it in words
    project.title = "forbidden"
    reasons = _failure(project.state.publish, BOB, PreconditionFailed, 409)
    assert reasons == [Reason("precondition", "Publish is not possible yet: “not forbidden” is not met")]
    # the marked methods stay ordinary methods
    assert project._has_title() is True
    assert project._not_forbidden() is False


def test_a_precondition_docstring_is_its_reason() -> None:
    class Vault(StateManager):
        LOCKED = State(0, "Locked")
        OPEN = State(1, "Open")
        unlock = Transition(LOCKED, OPEN, "Unlock")

    class Bank:
        vault = Vault("_vault")

        def __init__(self) -> None:
            self._vault = 0

        @Vault.unlock.precondition
        def _in_hours(self) -> bool:
            """The vault opens during office hours only.

            Not shown: only the first line is the reason.
            """
            return False

    reasons = _failure(Bank().vault.unlock, None, PreconditionFailed, 409)
    assert reasons == [Reason("precondition", "The vault opens during office hours only.")]


@pytest.mark.parametrize("user", [None, ALICE])
def test_empty_roles_read_well(user: t.Any) -> None:
    class Vault(StateManager):
        LOCKED = State(0, "Locked")
        OPEN = State(1, "Open")
        unlock = Transition(LOCKED, OPEN, "Unlock", roles=set())

    class Bank:
        vault = Vault("_vault")

        def __init__(self) -> None:
            self._vault = 0

    # no role list to name, and logging in would not help: 403 for anyone
    reasons = _failure(Bank().vault.unlock, user, PermissionDenied, 403)
    assert reasons == [Reason("permission", "No one may unlock this")]


def test_permission_comes_before_preconditions() -> None:
    reasons = _failure(_project(title="").state.publish, CAROL, PermissionDenied, 403)
    assert [r.code for r in reasons] == ["permission"]


def test_cascade_blocked_by_a_child() -> None:
    project = _project()
    project.chapters = [Chapter(id=7, _state=1), Chapter(id=8, _state=3), Chapter(id=9, _state=2)]
    reasons = _failure(project.state.delete, ALICE, StateConflict, 409)
    assert reasons == [Reason("cascade", "Chapter 8: Delete is not possible while state is Locked")]


def test_cascade_blocked_by_permission_on_a_child() -> None:
    class FolderState(StateManager):
        KEPT = State(0)
        TRASHED = State(1)
        trash = Transition(KEPT, TRASHED, "Trash", cascade={"files": "trash"})

    class FileState(StateManager):
        KEPT = State(0)
        TRASHED = State(1)
        trash = Transition(KEPT, TRASHED, "Trash", roles={"owner"})

    class File:
        state = FileState("_state")

        def __init__(self, id: int, owner: User) -> None:
            self.id = id
            self._state = 0
            self.owner = owner

        def roles_for(self, user: User | None) -> set[str]:
            return {"owner"} if user == self.owner else set()

    class Folder:
        state = FolderState("_state")

        def __init__(self, *files: File) -> None:
            self._state = 0
            self.files = list(files)

    folder = Folder(File(1, ALICE), File(2, BOB))
    reasons = _failure(folder.state.trash, ALICE, PermissionDenied, 403)
    assert reasons == [Reason("cascade", "File 2: Trash needs the role owner")]
    # nothing moved
    assert folder.state.KEPT and all(f.state.KEPT for f in folder.files)
    folder.files.pop()
    folder.state.trash(ALICE)
    assert folder.state.TRASHED and folder.files[0].state.TRASHED


def test_plan() -> None:
    project = _project()
    drafts = [Chapter(id=1, _state=1), Chapter(id=2, _state=1)]
    deleted = Chapter(id=3, _state=2)
    project.chapters = [*drafts, deleted]
    plan = project.state.delete.plan(ALICE)
    assert isinstance(plan, Plan)
    assert plan.ok and plan.blockers == [] and plan.error is None
    # the already-deleted chapter is skipped
    assert list(plan) == [
        (project, ProjectState.delete),
        (drafts[0], ChapterState.delete),
        (drafts[1], ChapterState.delete),
    ]
    assert len(plan) == 3
    assert plan.summary() == {"Project": 1, "Chapter": 2}
    assert [s.parent for s in plan.steps] == [None, 0, 0]
    assert [s.depth for s in plan.steps] == [0, 1, 1]
    assert [s.source for s in plan.steps] == [ProjectState.DRAFT, ChapterState.DRAFT, ChapterState.DRAFT]
    blocked = project.state.delete.plan(BOB)
    assert not blocked.ok and blocked.blockers[0].code == "permission"


def test_cascade_to_another_manager_on_the_same_object() -> None:
    project = _project(_review="approved")
    plan = project.state.submit.plan(ALICE)
    assert [(s.manager, s.transition) for s in plan.steps] == [
        ("state", ProjectState.submit),
        ("review", Project.review.lock.transition),
    ]
    # one object, whichever managers move
    assert plan.summary() == {"Project": 1}


# -- listings ------------------------------------------------------------------


def test_available_transitions_for_a_user() -> None:
    project = _project()
    for_bob = project.state.transitions(BOB)
    assert list(for_bob) == ["publish"]
    assert isinstance(for_bob["publish"], BoundTransition)
    assert for_bob["publish"].obj is project
    assert list(project.state.transitions(ALICE)) == ["publish", "delete"]
    assert project.state.transitions(CAROL) == {}
    assert project.state.transitions() == {}
    project._state = 2
    project.published_at = STAMP
    project.pinned = True
    assert list(project.state.transitions(ALICE)) == ["withdraw", "unpin", "redraft", "archive", "delete"]
    assert list(project.state.transitions()) == ["unpin", "redraft", "archive"]
    # and the result performs
    project.state.transitions()["unpin"]()
    assert project.state.DRAFT


def test_class_level_transitions() -> None:
    assert ProjectState.transitions() == {
        name: getattr(ProjectState, name)
        for name in ["publish", "withdraw", "unpin", "redraft", "archive", "delete", "submit"]
    }
    # on the model class: every transition, bound to the class
    on_class = Project.state.transitions()
    assert list(on_class) == list(ProjectState.transitions())
    assert all(b.obj is None and b.host is Project for b in on_class.values())


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "title"),
    [
        (StateConflict, 409, "State conflict"),
        (RequirementsUnmet, 409, "Requirements unmet"),
        (PermissionDenied, 403, "Permission denied"),
        (PreconditionFailed, 409, "Precondition failed"),
        (ValidationFailed, 422, "Validation failed"),
    ],
)
def test_error_classes(error: type[TransitionError], status: int, title: str) -> None:
    assert issubclass(error, TransitionError) and issubclass(TransitionError, StateMgrError)
    assert error.http_status == status and error.title == title
    reasons = [Reason("state", "first"), Reason("state", "second")]
    raised = error(reasons=reasons)
    assert raised.reasons == reasons
    assert raised.http_status == status
    if error is ValidationFailed:
        assert raised.message == "The submitted data is not valid"
    else:
        assert raised.message == "first; second" == str(raised)
    assert error().message == (title if error is not ValidationFailed else raised.message)
    assert error("Custom").message == "Custom"


def test_error_details() -> None:
    assert PermissionDenied(anonymous=True).http_status == 401
    assert PermissionDenied().http_status == 403
    failed = ValidationFailed(errors={"note": ("too long",)})
    assert failed.errors == {"note": ["too long"]}
    confirm = ConfirmationRequired(plan={"Project": 1, "Chapter": 3})
    assert confirm.http_status == 409 and confirm.plan == {"Project": 1, "Chapter": 3}
    assert isinstance(confirm, TransitionError)
    assert Reason("state", "x").to_dict() == {"code": "state", "message": "x"}
