"""The example app as a person meets it (issue 19): no transition offered
that the state of things forbids, no object shown that the API hides, a
history in the words of the buttons, messages that say what is wanted, and
pages that fit a phone."""

from __future__ import annotations

import datetime
import re

import pytest
import test_browser
from flask import Flask
from flask.testing import FlaskClient
from test_browser import Live, Pages, button, obj, rendered, screenshot, sqlite_only

from example_app.models import Project, Session, User, db

SCHEDULE = {
    "day": "2030-01-02",
    "room": "B-204",
    "seats": 40,
    "kind": "Talk",
    "tracks": ["Design"],
    "recorded": True,
    "notes": "",
}


# the example app served in a thread, Chromium, and pages signed in as a user
browser, live, pages = test_browser.browser, test_browser.live, test_browser.pages


def client_as(app: Flask, name: str | None) -> FlaskClient:
    """A test client signed in as the demo user ``name`` (None: anonymous)."""
    client = app.test_client()
    with app.app_context():
        id = db.session.scalars(db.select(User.id).filter_by(name=name)).first()
    with client.session_transaction() as session:
        session["user_id"] = id
    return client


def project_id(app: Flask, title: str) -> int:
    with app.app_context():
        return int(db.session.scalars(db.select(Project.id).filter_by(title=title)).one())


@pytest.fixture
def app(example: Flask) -> Flask:
    example.config["WTF_CSRF_ENABLED"] = False
    return example


def test_a_deleted_project_offers_no_review_step(app: Flask) -> None:
    olivia = client_as(app, "Olivia")
    spring = project_id(app, "Spring catalogue")
    # rejected first, so that resubmit would otherwise be offered
    rejected = client_as(app, "Rita").post(
        f"/_statemgr/objects/project/{spring}/review/reject", json={"category": "Style"}
    )
    assert rejected.status_code == 200
    deleted = olivia.post(f"/_statemgr/objects/project/{spring}/state/delete", json={"confirm": True})
    assert deleted.status_code == 200
    offered = olivia.get(f"/_statemgr/objects/project/{spring}").json
    assert offered is not None
    resubmit = offered["managers"]["review"]["transitions"]["resubmit"]
    assert resubmit["available"] is False
    assert [r["message"] for r in resubmit["reasons"]] == ["A deleted project is not reviewed"]
    refused = olivia.post(f"/_statemgr/objects/project/{spring}/review/resubmit", json={})
    assert refused.status_code == 409
    with app.app_context():
        project = db.session.get(Project, spring)
        assert project is not None and project.review.REJECTED


def test_a_redraft_takes_the_scheduled_sessions_back(app: Flask) -> None:
    eddie = client_as(app, "Eddie")
    notes = project_id(app, "Field notes")
    with app.app_context():
        project = db.session.get(Project, notes)
        assert project is not None
        scheduled, other = (s.id for s in project.sessions)
        project.sessions.append(Session(title="Dropped"))
        db.session.commit()
        dropped = project.sessions[-1].id
    assert eddie.post(f"/_statemgr/objects/session/{dropped}/state/delete", json={}).status_code == 403
    assert (
        client_as(app, "Olivia").post(f"/_statemgr/objects/session/{dropped}/state/delete", json={}).status_code == 200
    )
    withdraw = eddie.post(f"/_statemgr/objects/project/{notes}/state/withdraw", json={"reason": "Out of date now."})
    assert withdraw.status_code == 200
    asked = eddie.post(f"/_statemgr/objects/project/{notes}/state/redraft", json={})
    # it changes a session too, so it asks first
    assert asked.status_code == 409 and asked.json is not None
    assert asked.json["plan"] == {"Project": 1, "Session": 1}
    done = eddie.post(f"/_statemgr/objects/project/{notes}/state/redraft", json={"confirm": True})
    assert done.status_code == 200
    with app.app_context():
        states = {s.id: s.state.current.name for s in db.session.scalars(db.select(Session))}
        assert (states[scheduled], states[other], states[dropped]) == ("DRAFT", "DRAFT", "DELETED")


def test_anonymous_readers_see_only_the_sessions_they_can_open(app: Flask) -> None:
    notes = project_id(app, "Field notes")
    anonymous = client_as(app, None)
    page = anonymous.get(f"/projects/{notes}").get_data(as_text=True)
    shown = [int(id) for id in re.findall(r'data-statemgr="session:(\d+)"', page)]
    assert len(shown) == 1
    assert anonymous.get(f"/_statemgr/objects/session/{shown[0]}").status_code == 200
    with app.app_context():
        hidden = [s.id for s in db.session.scalars(db.select(Session).filter_by(project_id=notes)) if s.id not in shown]
    assert len(hidden) == 1 and "Day two" not in page
    assert anonymous.get(f"/_statemgr/objects/session/{hidden[0]}").status_code == 404
    # signed in, every session of the project
    assert (
        len(
            re.findall(
                r'data-statemgr="session:', client_as(app, "Victor").get(f"/projects/{notes}").get_data(as_text=True)
            )
        )
        == 2
    )


@pytest.mark.parametrize(("user", "offered"), [("Victor", False), ("Rita", False), ("Eddie", True), ("Olivia", True)])
def test_the_classic_withdraw_link_is_for_who_may_withdraw(app: Flask, user: str, offered: bool) -> None:
    notes = project_id(app, "Field notes")
    page = client_as(app, user).get(f"/projects/{notes}").get_data(as_text=True)
    assert (f'href="/projects/{notes}/withdraw"' in page) is offered


def test_the_history_reads_as_the_buttons_do(app: Flask) -> None:
    notes = project_id(app, "Field notes")
    page = client_as(app, "Victor").get(f"/projects/{notes}").get_data(as_text=True)
    entries = [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", li)).strip()
        for li in re.findall(r"<li><time.*?</li>", page, re.DOTALL)
    ]
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"
    assert len(entries) == 3
    assert re.fullmatch(stamp + r" Rita: Approve \(Pending → Approved\)", entries[0])
    assert re.fullmatch(stamp + r" Eddie: Publish \(Draft → Published\)", entries[1])
    # the Schedule button's transition is named publish in the code
    assert re.fullmatch(stamp + r" Eddie: Schedule session “Day one” \(Draft → Published\)", entries[2])
    german = client_as(app, "Victor")
    with german.session_transaction() as session:
        session["lang"] = "de"
    page = german.get(f"/projects/{notes}").get_data(as_text=True)
    assert "Rita: <strong>Freigeben</strong>" in page


def test_a_room_that_breaks_the_pattern_says_what_is_wanted(app: Flask) -> None:
    notes = project_id(app, "Field notes")
    with app.app_context():
        draft = db.session.scalars(db.select(Session.id).filter_by(project_id=notes, _state=1)).one()
    answer = client_as(app, "Eddie").post(
        f"/_statemgr/objects/session/{draft}/state/publish", json={**SCHEDULE, "room": "b204"}
    )
    assert answer.status_code == 422 and answer.json is not None
    assert answer.json["errors"] == {"room": ["Write a capital letter, a hyphen and three digits, such as B-204."]}


def test_the_default_page_confirms_a_cascade_with_a_destructive_button(app: Flask) -> None:
    notes = project_id(app, "Field notes")
    page = client_as(app, "Olivia").get(f"/_statemgr/pages/project/{notes}/state/delete").get_data(as_text=True)
    assert "This changes 3 objects: 1 × Project, 2 × Session." in re.sub(r"\s+", " ", page)
    assert '<button type="submit" class="statemgr-button statemgr-danger">Delete</button>' in page
    # a step that changes only its object keeps the ordinary button
    rita = client_as(app, "Rita").get(f"/_statemgr/pages/project/{project_id(app, 'Spring catalogue')}/review/approve")
    assert '<button type="submit" class="statemgr-button statemgr-primary">Approve</button>' in rita.get_data(
        as_text=True
    )


# -- in Chromium ----------------------------------------------------------------


@pytest.mark.browser
@sqlite_only
def test_a_deleted_card_leaves_the_index(pages: Pages, live: Live) -> None:
    project = live.add_project("Short-lived", sessions=["Only session"])
    page = pages.open("Olivia", "/")
    rendered(page, "project", project)
    page.click(button("project", project, "state.delete"))
    dialog = page.locator("dialog.statemgr-dialog")
    confirm = dialog.locator("button[type=submit]")
    # the cascade's confirmation is not the blue button of an ordinary step
    assert confirm.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(179, 38, 30)"
    screenshot(page, "person-delete-confirmation")
    confirm.click()
    page.wait_for_selector(obj("project", project), state="detached")
    assert page.locator(".cards > .card").count() >= 1


@pytest.mark.browser
@sqlite_only
def test_invalid_fields_are_outlined_alike(pages: Pages, live: Live) -> None:
    project = live.add_project("Outlines", review="approved", live=True, sessions=["Talk"])
    page = pages.open("Eddie", f"/projects/{project}")
    rendered(page, "project", project)
    session = int(page.get_attribute('[data-statemgr^="session:"]', "data-statemgr").split(":")[1])
    page.click(button("session", session, "state.publish"))
    dialog = page.locator("dialog.statemgr-dialog")
    dialog.locator('.statemgr-field[data-field="room"] input').fill("b204")
    dialog.locator('.statemgr-field[data-field="seats"] input').fill("0")
    dialog.locator("button[type=submit]").click()
    invalid = dialog.locator(".statemgr-invalid")
    expect_fields = {"day", "room", "seats", "tracks"}
    assert set(invalid.evaluate_all("fs => fs.map(f => f.dataset.field)")) == expect_fields
    borders = invalid.locator("input, select").evaluate_all("cs => cs.map(c => getComputedStyle(c).borderTopColor)")
    assert set(borders) == {"rgb(179, 38, 30)"}
    screenshot(page, "person-invalid-fields")


@pytest.mark.browser
@sqlite_only
def test_anonymous_readers_get_no_wall_of_disabled_buttons(pages: Pages, live: Live) -> None:
    project = live.add_project("Read only", review="approved", live=True, sessions=["Talk"])
    with live.app.app_context():
        scheduled = db.session.scalars(db.select(Session).filter_by(project_id=project)).one()
        eddie = db.session.scalars(db.select(User).filter_by(name="Eddie")).one()
        scheduled.state.publish(user=eddie, data={**SCHEDULE, "day": datetime.date(2030, 1, 2)})
        db.session.commit()
        session = scheduled.id
    page = pages.open(None, f"/projects/{project}")
    rendered(page, "project", project)
    rendered(page, "session", session)
    assert page.locator("button[data-statemgr-transition], .statemgr-disabled").count() == 0
    assert page.locator("p.hint").inner_text() == "Sign in with the switcher to see drafts and act on projects."
    # signed in, every transition is shown, the unavailable ones disabled
    signed_in = pages.open("Victor", f"/projects/{project}")
    rendered(signed_in, "project", project)
    assert signed_in.locator(f"{obj('project', project)} button[data-statemgr-transition]:disabled").count() >= 4


PHONE = {"width": 390, "height": 844}


@pytest.mark.browser
@sqlite_only
@pytest.mark.parametrize("user", ["Olivia", "Eddie", "Rita", "Victor", None])
def test_every_page_fits_a_phone(pages: Pages, live: Live, user: str | None) -> None:
    with live.app.app_context():
        ids = db.session.scalars(db.select(Project.id).where(~Project.state.DELETED).order_by(Project.id)).all()
    page = pages.new_page(user, has_touch=True)
    page.set_viewport_size(PHONE)
    for path in ["/", *(f"/projects/{id}" for id in ids)]:
        answer = page.goto(live.url + path)
        assert answer is not None
        if answer.status == 404:
            # a draft, for an anonymous reader
            assert user is None
            continue
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow == 0, path
    screenshot(page, f"person-phone-{user}")


def test_a_new_project_form_error_is_shown_at_its_field(app: Flask) -> None:
    answer = client_as(app, "Olivia").post("/projects", data={"title": "   ", "summary": "Blank title."})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    field = re.search(r'<div class="statemgr-field statemgr-invalid">(.*?)</div>', page, re.DOTALL)
    assert field is not None and 'for="title"' in field[1]
    assert 'aria-invalid="true"' in field[1] and "This field is required." in field[1]
    # once, at the field, not again at the top of the page
    assert page.count("This field is required.") == 1
    with app.app_context():
        assert db.session.scalars(db.select(Project).filter_by(summary="Blank title.")).first() is None


def test_a_deleted_project_says_so_instead_of_offering_buttons(app: Flask) -> None:
    olivia = client_as(app, "Olivia")
    spring = project_id(app, "Spring catalogue")
    before = olivia.get(f"/projects/{spring}").get_data(as_text=True)
    assert "statemgr-disabled" in before and "This project is deleted" not in before
    assert olivia.post(f"/_statemgr/objects/project/{spring}/state/delete", json={"confirm": True}).status_code == 200
    after = olivia.get(f"/projects/{spring}").get_data(as_text=True)
    assert "This project is deleted; nothing more can be done with it." in after
    assert "statemgr-disabled" not in after and "statemgr-button" not in after.split("<section")[0].split("<article")[1]
    assert f'data-statemgr="project:{spring}" data-statemgr-hide-unavailable' in after


@pytest.mark.browser
@sqlite_only
def test_deleting_on_the_project_page_shows_the_notice(pages: Pages, live: Live) -> None:
    project = live.add_project("Doomed", sessions=["One"])
    page = pages.open("Olivia", f"/projects/{project}")
    rendered(page, "project", project)
    page.click(button("project", project, "state.delete"))
    page.locator("dialog.statemgr-dialog button[type=submit]").click()
    # the app's fragment follows the state change by itself
    page.locator("#project-facts .notice", has_text="This project is deleted").wait_for()
