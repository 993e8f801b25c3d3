"""The JS client and the example app in a real browser: Debian's Chromium
driven by Playwright, against the example app served on a free port."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
import threading
import typing as t
from pathlib import Path

import pytest
from conftest import service_missing
from flask import Flask
from playwright.sync_api import expect, sync_playwright
from werkzeug.serving import WSGIRequestHandler, make_server

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
LOGINS = {
    "Olivia": "Olivia (owner)",
    "Eddie": "Eddie (editor)",
    "Rita": "Rita (reviewer)",
    "Victor": "Victor (viewer)",
    None: "Nobody (anonymous)",
}
XSS = '<img src=x onerror="window.__xss=1">'
# Every page records the client's DOM events, for the tests to read.
RECORD_EVENTS = """
window.__statemgr = [];
for (const type of ["statemgr:transition", "statemgr:error"]) {
  document.addEventListener(type, (e) => window.__statemgr.push({
    type, detail: e.detail, bubbles: e.bubbles, target: e.target.dataset?.statemgr ?? null,
  }));
}
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.blockedURI));
"""


class _QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: t.Any) -> None:
        pass


@dataclasses.dataclass
class Live:
    """The example app served in a thread."""

    url: str
    app: Flask

    def add_project(
        self,
        title: str,
        *,
        summary: str = "A summary.",
        review: str = "pending",
        live: bool = False,
        sessions: t.Sequence[str] = (),
    ) -> int:
        from example_app.models import Project, ProjectState, Session, User, db, utcnow

        with self.app.app_context():
            owner = db.session.scalars(db.select(User).filter_by(name="Olivia")).one()
            project = Project(title=title, summary=summary, owner=owner, _review=review)
            if live:
                project._state = ProjectState.PUBLISHED.value
                project.publish_at = utcnow() - datetime.timedelta(hours=1)
            project.sessions = [Session(title=s) for s in sessions]
            db.session.add(project)
            db.session.commit()
            return project.id

    def session_cookie(self, user: str) -> str:
        """The session cookie of ``user`` signed in."""
        from example_app.models import User, db

        with self.app.app_context():
            id = db.session.scalars(db.select(User.id).filter_by(name=user)).one()
        serializer = self.app.session_interface.get_signing_serializer(self.app)  # type: ignore[attr-defined]
        return t.cast(str, serializer.dumps({"user_id": id}))

    def add_user(self, name: str, role: str) -> None:
        from example_app.models import User, db

        with self.app.app_context():
            db.session.add(User(name=name, role=role))
            db.session.commit()

    def set_role(self, name: str, role: str) -> None:
        from example_app.models import User, db

        with self.app.app_context():
            db.session.scalars(db.select(User).filter_by(name=name)).one().role = role
            db.session.commit()

    def update_project(self, id: int, **values: t.Any) -> None:
        from example_app.models import Project, db

        with self.app.app_context():
            project = db.session.get(Project, id)
            for key, value in values.items():
                setattr(project, key, value)
            db.session.commit()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Live]:
    """The example app on a fresh database (a new SQLite file, or this test
    process's PostgreSQL schema), served on 127.0.0.1 in a thread."""
    from apps import dispose

    from example_app import create_app
    from example_app.models import db

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'example.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    # each test closes its pages; their event streams end at the next
    # heartbeat, so they are not left reading the table for the next tests
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "browser", "STATEMGR_EVENTS_HEARTBEAT": 1})
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Live(f"http://127.0.0.1:{server.server_port}", app)
    server.shutdown()
    thread.join()
    server.server_close()
    dispose(app, db)


# Page-level behaviour needs one database; what involves concurrent
# requests runs on both.
sqlite_only = pytest.mark.parametrize("live", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def browser() -> t.Iterator[t.Any]:
    if not os.access(CHROMIUM, os.X_OK):
        service_missing("Chromium", FileNotFoundError(CHROMIUM))
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Pages:
    """Opens pages, each in its own browser context (its own cookies: its
    own user), and collects uncaught page errors."""

    def __init__(self, browser: t.Any, live: Live) -> None:
        self.browser = browser
        self.live = live
        self.contexts: list[t.Any] = []
        self.errors: list[str] = []

    def open(self, user: str | None, path: str = "/", **options: t.Any) -> t.Any:
        page = self.new_page(user, **options)
        page.goto(self.live.url + path)
        return page

    def new_page(self, user: str | None, **options: t.Any) -> t.Any:
        """A page of a new context (with Playwright's context ``options``,
        such as ``timezone_id``), before it goes anywhere."""
        context = self.browser.new_context(viewport={"width": 1100, "height": 800}, **options)
        # Everything here answers in well under a second; fail fast.
        context.set_default_timeout(5000)
        context.add_init_script(RECORD_EVENTS)
        self.contexts.append(context)
        if user is not None:
            # Signed in from the start: the switcher has its own test.
            context.add_cookies([{"name": "session", "value": self.live.session_cookie(user), "url": self.live.url}])
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: t.Any, live: Live) -> t.Iterator[Pages]:
    opened = Pages(browser, live)
    yield opened
    opened.close()
    assert not opened.errors, opened.errors


def login(page: t.Any, user: str | None) -> None:
    """Switch user with the header's switcher; it reloads the same page."""
    with page.expect_navigation():
        page.select_option("#login-user", label=LOGINS[user])


def obj(kind: str, id: int) -> str:
    return f'[data-statemgr="{kind}:{id}"]'


def button(kind: str, id: int, transition: str) -> str:
    return f'{obj(kind, id)} button[data-statemgr-transition="{transition}"]'


def rendered(page: t.Any, kind: str, id: int) -> None:
    """Wait until the client rendered the object (it sets data-<manager>)."""
    page.wait_for_selector(f"{obj(kind, id)}[data-state]", state="attached")


def buttons(page: t.Any, kind: str, id: int) -> dict[str, tuple[bool, str]]:
    """Transition -> (enabled, reason) as rendered for the object."""
    result: list[list[t.Any]] = page.eval_on_selector_all(
        f"{obj(kind, id)} button[data-statemgr-transition]",
        "bs => bs.map(b => [b.dataset.statemgrTransition, !b.disabled, b.title])",
    )
    return {name: (enabled, reason) for name, enabled, reason in result}


def screenshot(page: t.Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@sqlite_only
def test_each_role_sees_its_buttons(pages: Pages, live: Live) -> None:
    draft = live.add_project("Roles draft", sessions=["Talk"])
    expected = {
        "Olivia": {"state.delete"},
        "Eddie": set(),
        "Rita": {"review.approve", "review.reject"},
        "Victor": set(),
    }
    page = pages.open(None, f"/projects/{draft}")
    assert page.locator("h1").inner_text() == "404 · Not Found"
    for user, available in expected.items():
        login(page, user)
        rendered(page, "project", draft)
        shown = buttons(page, "project", draft)
        assert {name for name, (enabled, _) in shown.items() if enabled} == available, user
        # every transition is shown; the unavailable ones say why
        assert set(shown) >= {"state.publish", "state.delete", "review.approve"}
        assert shown["state.publish"] == (False, "The review must be approved first")
        if user != "Rita":
            assert shown["review.approve"] == (False, "Approve needs the role reviewer")
        if user != "Olivia":
            assert shown["state.delete"] == (False, "Delete needs the role owner")
    # a session requires its project published, whoever looks
    schedule = page.locator('[data-statemgr^="session:"] button[data-statemgr-transition="state.publish"]')
    expect(schedule).to_be_disabled()
    expect(schedule).to_have_attribute("title", "The project must be published first")

    # anonymous readers see only live projects, none of the buttons they
    # cannot use, and are told to sign in (tests/test_example_person.py)
    live_project = live.add_project("Roles live", review="approved", live=True)
    login(page, None)
    page.goto(f"{live.url}/projects/{live_project}")
    rendered(page, "project", live_project)
    # they can do nothing, so by default they are shown nothing (issue 19);
    # the object JSON still says why
    assert buttons(page, "project", live_project) == {}
    withdraw = page.evaluate(f"window.statemgr.object('project', {live_project})")["managers"]["state"]["transitions"][
        "withdraw"
    ]
    assert withdraw["reasons"][0]["message"] == "Withdraw needs the role editor or owner; log in first"


@sqlite_only
def test_form_with_client_server_and_valid_data(pages: Pages, live: Live) -> None:
    project = live.add_project("Form target", review="approved")
    # the wall time typed below is UTC's, as the form's label says
    page = pages.open("Eddie", f"/projects/{project}", timezone_id="UTC")
    posts: list[t.Any] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    page.click(button("project", project, "state.publish"))
    dialog = page.locator("dialog.statemgr-dialog")
    error = dialog.locator('.statemgr-field[data-field="publish_at"] .statemgr-error')

    # 1. the browser applies the schema's rules and sends nothing
    dialog.locator("button[type=submit]").click()
    assert error.inner_text() == "This field is required."
    assert posts == []

    # 2. a rule only the server knows comes back as a 422 next to its field
    later = datetime.datetime.now() + datetime.timedelta(days=800)
    dialog.locator("input[type=datetime-local]").fill(later.strftime("%Y-%m-%dT%H:%M"))
    dialog.locator("button[type=submit]").click()
    expect(error).to_contain_text("year")
    assert error.inner_text() == "Schedule at most a year ahead."
    assert len(posts) == 1
    screenshot(page, "dialog-publish-422")

    # 3. valid data: the dialog closes and the page follows
    earlier = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    dialog.locator("input[type=datetime-local]").fill(earlier.strftime("%Y-%m-%dT%H:%M"))
    dialog.locator("button[type=submit]").click()
    badge = page.locator(f'{obj("project", project)} [data-statemgr-badge="state"]')
    badge.filter(has_text="Live").wait_for()
    assert dialog.count() == 0
    assert buttons(page, "project", project)["state.withdraw"][0]
    # the app's own fragment (the publish date) followed the transition
    page.locator("#project-facts", has_text=earlier.strftime("%Y-%m-%d %H:%M UTC")).wait_for()

    body = json.loads(posts[-1].post_data)
    # RFC 3339 with the browser's offset, as the schema's date-time says
    assert body == {"publish_at": earlier.strftime("%Y-%m-%dT%H:%M:00+00:00")}
    events = page.evaluate("window.__statemgr")
    assert [e["type"] for e in events] == ["statemgr:error", "statemgr:transition"]
    # both bubbled up to the document from the object's element
    assert [(e["bubbles"], e["target"]) for e in events] == [(True, f"project:{project}")] * 2
    assert events[0]["detail"]["problem"]["status"] == 422
    done = events[1]["detail"]
    assert (done["model"], done["id"], done["manager"], done["transition"]) == (
        "project",
        str(project),
        "state",
        "publish",
    )
    assert done["result"]["target"] == "PUBLISHED"


@sqlite_only
def test_a_local_date_time_is_sent_with_the_browsers_offset(pages: Pages, live: Live) -> None:
    project = live.add_project("Paris target", review="approved")
    page = pages.open("Eddie", f"/projects/{project}", timezone_id="Europe/Paris")
    posts: list[t.Any] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    page.click(button("project", project, "state.publish"))
    dialog = page.locator("dialog.statemgr-dialog")
    # summer and winter time: the offset is the one of that date
    dialog.locator("input[type=datetime-local]").fill("2026-07-01T14:30")
    dialog.locator("button[type=submit]").click()
    page.locator("#project-facts", has_text="2026-07-01 12:30 UTC").wait_for()
    assert json.loads(posts[-1].post_data) == {"publish_at": "2026-07-01T14:30:00+02:00"}
    expect(dialog).to_have_count(0)

    later = live.add_project("Paris winter", review="approved")
    page.goto(f"{live.url}/projects/{later}")
    page.click(button("project", later, "state.publish"))
    dialog.locator("input[type=datetime-local]").fill("2026-01-15T09:05")
    dialog.locator("button[type=submit]").click()
    page.locator("#project-facts", has_text="2026-01-15 08:05 UTC").wait_for()
    assert json.loads(posts[-1].post_data) == {"publish_at": "2026-01-15T09:05:00+01:00"}


@sqlite_only
def test_textarea_length_and_csrf_header(pages: Pages, live: Live) -> None:
    project = live.add_project("Withdraw target", review="approved", live=True)
    page = pages.open("Eddie", f"/projects/{project}")
    token = page.get_attribute('meta[name="csrf-token"]', "content")
    posts: list[t.Any] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    page.click(button("project", project, "state.withdraw"))
    dialog = page.locator("dialog.statemgr-dialog")
    dialog.locator("textarea").fill("Too short")
    dialog.locator("button[type=submit]").click()
    error = dialog.locator('.statemgr-field[data-field="reason"] .statemgr-error')
    assert error.inner_text() == "Field must be between 10 and 500 characters long."
    assert dialog.locator("textarea").get_attribute("aria-invalid") == "true"
    screenshot(page, "dialog-withdraw-invalid")
    assert posts == []

    dialog.locator("textarea").fill("Superseded by the new edition.")
    dialog.locator("button[type=submit]").click()
    page.locator(f'{obj("project", project)} [data-statemgr-badge="state"]', has_text="Withdrawn").wait_for()
    assert len(posts) == 1
    assert token and posts[0].headers["x-csrftoken"] == token
    assert posts[0].url.endswith(f"/_statemgr/objects/project/{project}/state/withdraw")
    page.locator("#project-history", has_text="withdraw").wait_for()


def test_conflict_when_changed_elsewhere_first(pages: Pages, live: Live) -> None:
    project = live.add_project("Conflict target")
    first = pages.open("Rita", f"/projects/{project}")
    second = pages.open("Rita", f"/projects/{project}")
    rendered(first, "project", project)
    # the first page stops listening, so it still offers Approve
    first.evaluate("window.statemgr.stop()")
    second.click(button("project", project, "review.approve"))
    second.locator(f'{obj("project", project)} [data-statemgr-badge="review"]', has_text="Approved").wait_for()

    first.click(button("project", project, "review.approve"))
    message = first.locator(f"{obj('project', project)} [data-statemgr-message]")
    message.filter(has_text="Approve is not possible while review is Approved").wait_for()
    # after the refusal the page catches up
    first.wait_for_selector(f"{button('project', project, 'review.approve')}[disabled]")
    errors = first.evaluate("window.__statemgr")
    assert errors[-1]["type"] == "statemgr:error"
    assert errors[-1]["detail"]["problem"]["status"] == 409


def test_other_pages_follow_by_themselves(pages: Pages, live: Live) -> None:
    project = live.add_project("Sync target", sessions=["Keynote"])
    actor = pages.open("Rita", f"/projects/{project}")
    # the same user in another tab, another user, and a list page
    tab = pages.open("Rita", f"/projects/{project}")
    watcher = pages.open("Victor", f"/projects/{project}")
    index = pages.open("Olivia", "/")
    for page in (actor, tab, watcher, index):
        rendered(page, "project", project)
        # by default a visible page polls every second (the backoff test
        # checks that pace), so a change made elsewhere shows within 2 s; a
        # timed assertion would be flaky on a busy host
        assert page.evaluate("window.statemgr.pollInterval") == 1000

    actor.click(button("project", project, "review.approve"))
    for page in (actor, tab, watcher, index):
        badge = page.locator(f'{obj("project", project)} [data-statemgr-badge="review"]')
        expect(badge).to_have_text("Approved")
    # the owner's list now offers Publish for this project
    expect(index.locator(button("project", project, "state.publish"))).to_be_enabled()
    # only the page that acted reports a transition
    assert [e["type"] for e in actor.evaluate("window.__statemgr")] == ["statemgr:transition"]
    assert tab.evaluate("window.__statemgr") == []


@sqlite_only
def test_cascade_asks_for_confirmation(pages: Pages, live: Live) -> None:
    project = live.add_project("Cascade target", sessions=["One", "Two"])
    page = pages.open("Olivia", f"/projects/{project}")
    rendered(page, "project", project)
    posts: list[t.Any] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    page.click(button("project", project, "state.delete"))
    dialog = page.locator("dialog.statemgr-dialog")
    assert dialog.locator(".statemgr-confirm").inner_text() == (
        "Delete changes 3 objects (1 × Project, 2 × Session). Continue?"
    )
    screenshot(page, "dialog-cascade")
    dialog.locator("button[type=submit]").click()
    page.locator(f'{obj("project", project)} [data-statemgr-badge="state"]', has_text="Deleted").wait_for()
    for badge in page.locator('[data-statemgr^="session:"] [data-statemgr-badge]').all():
        badge.filter(has_text="Deleted").wait_for(timeout=2000)
    assert json.loads(posts[0].post_data) == {"confirm": True}


@sqlite_only
def test_server_strings_are_text(pages: Pages, live: Live) -> None:
    project = live.add_project(XSS, review="approved", sessions=["Child"])
    page = pages.open("Olivia", f"/projects/{project}")
    rendered(page, "project", project)
    assert page.locator("h1[data-statemgr-label]").inner_text() == XSS
    # a reason that carries the title, in a dialog and as a message
    page.evaluate("window.statemgr.stop()")
    live.update_project(project, summary="")
    page.click(button("project", project, "state.publish"))
    dialog = page.locator("dialog.statemgr-dialog")
    assert dialog.locator(".statemgr-object").inner_text() == XSS
    dialog.locator("input[type=datetime-local]").fill("2024-01-01T10:00")
    dialog.locator("button[type=submit]").click()
    dialog.locator(".statemgr-message", has_text="needs a summary").wait_for()
    assert dialog.locator(".statemgr-message").inner_text() == f"“{XSS}” needs a summary before it is published"
    dialog.locator("button", has_text="Cancel").click()
    # the refused transition refreshes the object; its button then says why
    expect(page.locator(button("project", project, "state.publish"))).to_have_attribute(
        "title", f"“{XSS}” needs a summary before it is published"
    )
    index = pages.open("Olivia", "/")
    rendered(index, "project", project)
    assert index.locator(f"{obj('project', project)} [data-statemgr-label]").inner_text() == XSS
    for shown in (page, index):
        assert shown.evaluate("window.__xss") is None
        assert shown.locator("img").count() == 0


@sqlite_only
def test_schema_is_revalidated_with_its_etag(pages: Pages, live: Live) -> None:
    page = pages.open("Victor")
    # the first load keeps the schema and its ETag in sessionStorage
    page.wait_for_function("() => Object.keys(sessionStorage).some(k => k.startsWith('statemgr:schema:'))")
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if r.url.endswith("/_statemgr/schema") else None)
    with page.expect_response(lambda r: r.url.endswith("/_statemgr/schema")) as response:
        page.goto(live.url + "/")
    assert response.value.status == 304
    assert response.value.request.headers["if-none-match"] == response.value.headers["etag"]
    page.wait_for_selector("[data-statemgr][data-state]", state="attached")
    # once per page, however many objects it shows
    assert len(seen) == 1


@sqlite_only
def test_main_pages_look_right(pages: Pages, live: Live) -> None:
    project = live.add_project("Screenshot project", review="approved", live=True, sessions=["Morning", "Afternoon"])
    page = pages.open("Olivia")
    page.wait_for_selector("[data-statemgr][data-state]", state="attached")
    screenshot(page, "index-olivia")
    page.goto(f"{live.url}/projects/{project}")
    rendered(page, "project", project)
    screenshot(page, "project-detail")
    page.goto(f"{live.url}/projects/{project}/withdraw")
    assert page.locator("h1").inner_text() == "Withdraw “Screenshot project”"
    screenshot(page, "classic-withdraw")
    page.goto(f"{live.url}/_statemgr/pages/project/{project}/state/delete?next=/")
    assert page.locator(".statemgr-confirm").count() == 1
    screenshot(page, "default-transition-page")
    anonymous = pages.open(None)
    anonymous.wait_for_selector("[data-statemgr][data-state]", state="attached")
    screenshot(anonymous, "index-anonymous")


# Polls with a fake fetch and records the delays the client asks setTimeout
# for, so the backoff is checked without waiting for it.
BACKOFF = """
async () => {
  // the page's own client polls too; only the client under test may set timers
  window.statemgr.stop();
  const { StateClient } = await import("/_statemgr/static/statemgr.js");
  const object = {model: "thing", id: "1", label: "Thing", cursor: 5, managers: {}};
  let failing = false;
  const fetch = async (url) => {
    if (failing) throw new TypeError("offline");
    const body = url.includes("/events") ? {events: [], cursor: 5} : object;
    return new Response(JSON.stringify(body), {headers: {"Content-Type": "application/json"}});
  };
  const root = document.createElement("div");
  root.append(document.createElement("div"));
  root.firstChild.setAttribute("data-statemgr", "thing:1");
  document.body.append(root);
  const delays = [];
  const realSetTimeout = window.setTimeout;
  window.setTimeout = (f, delay) => { delays.push(delay); return realSetTimeout(f, 0); };
  const client = new StateClient({fetch, pollInterval: 700, stream: false});
  await client.mount(root);
  const phase = async (n, start = delays.length) => {
    while (delays.length < start + n) await new Promise((r) => realSetTimeout(r, 5));
    return delays.slice(start, start + n);
  };
  client.start();
  const visible = await phase(3);
  let hidden = true;
  Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
  const whileHidden = await phase(4);
  hidden = false;
  const shown = delays.length;
  document.dispatchEvent(new Event("visibilitychange"));
  const back = await phase(3, shown);
  failing = true;
  // a poll already past its fetch still succeeds: look at the last three
  const offline = (await phase(4)).slice(-3);
  client.stop();
  window.setTimeout = realSetTimeout;
  return {visible, whileHidden, back, offline};
}
"""


def test_a_second_page_follows_through_the_stream(pages: Pages, live: Live) -> None:
    """The watcher's page holds the event stream open and polls nothing: the
    change reaches it through the stream."""
    project = live.add_project("Streamed", sessions=["Talk"])
    actor = pages.open("Rita", f"/projects/{project}")
    watcher = pages.open("Victor", f"/projects/{project}")
    polls: list[str] = []
    watcher.on("request", lambda r: polls.append(r.url) if "/_statemgr/events?" in r.url else None)
    for page in (actor, watcher):
        rendered(page, "project", project)
    watcher.wait_for_function("window.statemgr._source && window.statemgr._source.readyState === 1")
    actor.click(button("project", project, "review.approve"))
    badge = watcher.locator(f'{obj("project", project)} [data-statemgr-badge="review"]')
    expect(badge).to_have_text("Approved")
    assert polls == []
    assert watcher.evaluate("window.statemgr._source.readyState") == 1


# A stream the server refuses (503: over its cap, or a sync worker): the
# client polls at its usual pace instead, and tries the stream again later.
REFUSED_STREAM = """
async () => {
  window.statemgr.stop();
  const { StateClient } = await import("/_statemgr/static/statemgr.js");
  const opened = [];
  class Refused {
    static CLOSED = 2;
    constructor(url) {
      opened.push(url);
      this.readyState = 0;
      setTimeout(() => { this.readyState = 2; this.onerror(new Event("error")); }, 0);
    }
    close() { this.readyState = 2; }
  }
  const polled = [];
  const fetch = async (url) => {
    if (url.includes("/events")) polled.push(url);
    const body = url.includes("/events") ? {events: [], cursor: "7.5"}
      : {model: "thing", id: "1", label: "Thing", cursor: "7.5", managers: {}};
    return new Response(JSON.stringify(body), {headers: {"Content-Type": "application/json"}});
  };
  const root = document.createElement("div");
  root.innerHTML = '<div data-statemgr="thing:1"></div>';
  document.body.append(root);
  const client = new StateClient({fetch, pollInterval: 50, EventSource: Refused});
  await client.mount(root);
  client.start();
  while (polled.length < 3) await new Promise((r) => setTimeout(r, 10));
  client.stop();
  return {opened, polled};
}
"""


# A page without objects holds no stream; one appearing later opens it.
STREAM_ON_DEMAND = """
async () => {
  window.statemgr.stop();
  const { StateClient } = await import("/_statemgr/static/statemgr.js");
  const opened = [];
  class Recorded {
    static CLOSED = 2;
    constructor(url) { opened.push(url); this.readyState = 1; }
    close() { this.readyState = 2; }
  }
  const root = document.createElement("div");
  document.body.append(root);
  const body = {model: "thing", id: "1", label: "Thing", cursor: "7.5", managers: {}};
  const fetch = async () => new Response(JSON.stringify(body), {headers: {"Content-Type": "application/json"}});
  const client = new StateClient({fetch, pollInterval: 20, EventSource: Recorded});
  await client.mount(root);
  client.start();
  await new Promise((r) => setTimeout(r, 100));
  const before = opened.length;
  root.innerHTML = '<div data-statemgr="thing:1"></div>';
  while (!opened.length) await new Promise((r) => setTimeout(r, 10));
  client.stop();
  return {before, opened};
}
"""


@sqlite_only
def test_a_page_without_objects_opens_no_stream_until_one_appears(pages: Pages) -> None:
    result = pages.open("Victor").evaluate(STREAM_ON_DEMAND)
    assert result["before"] == 0
    assert result["opened"] == ["/_statemgr/events/stream"]


@sqlite_only
def test_a_refused_stream_falls_back_to_polling(pages: Pages) -> None:
    result = pages.open("Victor").evaluate(REFUSED_STREAM)
    assert result["opened"] == ["/_statemgr/events/stream?after=7.5"]
    assert result["polled"][:3] == ["/_statemgr/events?after=7.5"] * 3


@sqlite_only
def test_polling_backs_off_while_hidden_or_failing(pages: Pages) -> None:
    page = pages.open("Victor")
    delays = page.evaluate(BACKOFF)
    assert delays["visible"] == [700, 700, 700]
    assert delays["whileHidden"] == [1400, 2800, 5600, 11200]
    # visible again: poll at once, then at the normal pace
    assert delays["back"][0] == 0 and delays["back"][-1] == 700
    first = delays["offline"][0]
    assert first >= 1400 and delays["offline"] == [first, 2 * first, 4 * first]


@sqlite_only
def test_elements_added_later_are_rendered(pages: Pages, live: Live) -> None:
    project = live.add_project("Added later", review="approved")
    page = pages.open("Olivia")
    rendered(page, "project", project)
    # what an htmx swap does: a second element for an object already shown
    page.evaluate(
        """id => {
          const card = document.createElement("section");
          card.innerHTML = `<div class="swapped" data-statemgr="project:${id}">
            <b data-statemgr-badge="review"></b> <i data-statemgr-badge="state"></i>
            <div data-statemgr-transitions="state"></div></div>`;
          document.querySelector("main").append(card);
        }""",
        project,
    )
    expect(page.locator(".swapped [data-statemgr-badge=review]")).to_have_text("Approved")
    shown = page.eval_on_selector_all(".swapped button", "bs => bs.map(b => b.dataset.statemgrTransition)")
    assert shown == ["state.publish", "state.withdraw", "state.redraft", "state.delete"]
    page.click('.swapped button[data-statemgr-transition="state.publish"]')
    dialog = page.locator("dialog.statemgr-dialog")
    assert dialog.locator("h2").inner_text() == "Publish"
    dialog.locator("input[type=datetime-local]").fill("2024-01-01T10:00")
    dialog.locator("button[type=submit]").click()
    # both elements show the new state, and the card offers what follows
    for element in page.locator(obj("project", project)).all():
        expect(element.locator("[data-statemgr-badge=state]")).to_have_text("Live")
    expect(page.locator(f"article{button('project', project, 'state.withdraw')}")).to_be_enabled()
    expect(page.locator(f"article{button('project', project, 'state.publish')}")).to_have_count(0)


@sqlite_only
def test_lists_hide_what_the_user_cannot_do(pages: Pages, live: Live) -> None:
    project = live.add_project("Hidden buttons")
    page = pages.open("Olivia", f"/projects/{project}")
    rendered(page, "project", project)
    shown = buttons(page, "project", project)
    assert {name for name, (enabled, _) in shown.items() if not enabled} >= {"state.publish", "review.approve"}
    # the index's cards carry data-statemgr-hide-unavailable
    page.goto(live.url + "/")
    rendered(page, "project", project)
    assert buttons(page, "project", project) == {"state.delete": (True, "")}


def schedule(dialog: t.Any, **values: t.Any) -> None:
    """Fill the session's schedule form; absent fields keep their value."""
    for name, value in values.items():
        field = dialog.locator(f'.statemgr-field[data-field="{name}"]')
        if name in ("kind", "tracks"):
            field.locator("select").select_option(label=value)
        elif name == "recorded":
            field.locator("input").set_checked(value)
        else:
            field.locator("input, textarea").fill(value)


def shown_errors(dialog: t.Any) -> dict[str, str]:
    return t.cast(
        dict[str, str],
        dialog.locator(".statemgr-error:not([hidden])").evaluate_all(
            "es => Object.fromEntries(es.map(e => [e.dataset.field, e.textContent]))",
        ),
    )


# The server's answer to the same data, through the page's client.
SERVER_ERRORS = """async ([id, data]) => {
  try {
    await window.statemgr.perform("session", id, "state", "publish", data);
    return null;
  } catch (error) {
    return error.problem.errors;
  }
}"""


@sqlite_only
def test_form_fields_are_checked_as_the_server_checks_them(pages: Pages, live: Live) -> None:
    project = live.add_project("Schedule target", review="approved", live=True, sessions=["Workshop"])
    page = pages.open("Eddie", f"/projects/{project}")
    rendered(page, "project", project)
    session = int(page.get_attribute('[data-statemgr^="session:"]', "data-statemgr").split(":")[1])
    posts: list[t.Any] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    page.click(button("session", session, "state.publish"))
    dialog = page.locator("dialog.statemgr-dialog")
    controls = dialog.locator(".statemgr-field").evaluate_all(
        """fs => fs.map(f => {
          const c = f.querySelector("input, select, textarea");
          return [f.dataset.field, c.tagName.toLowerCase() + (c.type ? ":" + c.type : "")];
        })""",
    )
    assert controls == [
        ["day", "input:date"],
        ["room", "input:text"],
        ["seats", "input:number"],
        ["kind", "select:select-one"],
        ["tracks", "select:select-multiple"],
        ["recorded", "input:checkbox"],
        ["notes", "textarea:textarea"],
    ]

    # what the browser refuses, it refuses with the server's words
    cases: list[tuple[dict[str, t.Any], dict[str, t.Any]]] = [
        (
            {"room": "b-204", "seats": "0", "notes": "x" * 301},
            {"room": "b-204", "seats": 0, "kind": "Talk", "tracks": [], "recorded": True, "notes": "x" * 301},
        ),
        (
            {"day": "2026-12-01", "room": "B-2045", "seats": "2.5", "tracks": ["Design"], "notes": ""},
            {
                "day": "2026-12-01",
                "room": "B-2045",
                "seats": 2.5,
                "kind": "Talk",
                "tracks": ["Design"],
                "recorded": True,
                "notes": "",
            },
        ),
    ]
    expected_fields = [{"day", "room", "seats", "tracks", "notes"}, {"room", "seats"}]
    for (filled, data), fields in zip(cases, expected_fields):
        schedule(dialog, **filled)
        dialog.locator("button[type=submit]").click()
        browser = shown_errors(dialog)
        assert set(browser) == fields
        assert posts == []
        server = page.evaluate(SERVER_ERRORS, [session, data])
        posts.clear()
        # the room's Regexp says what it wants (ScheduleForm), and the
        # browser reads that message from the ui hints
        assert server["room"] == ["Write a capital letter, a hyphen and three digits, such as B-204."]
        assert browser == {name: " ".join(messages) for name, messages in server.items()}
    screenshot(page, "dialog-schedule-invalid")

    schedule(
        dialog,
        day="2026-12-01",
        room="C-101",
        seats="35",
        kind="Workshop",
        tracks=["Design", "Editorial"],
        recorded=False,
        notes="Bring slides.",
    )
    dialog.locator("button[type=submit]").click()
    expect(page.locator(f"{obj('session', session)} [data-statemgr-badge]")).to_have_text("Published")
    assert json.loads(posts[0].post_data) == {
        "day": "2026-12-01",
        "room": "C-101",
        "seats": 35,
        "kind": "Workshop",
        "tracks": ["Design", "Editorial"],
        "recorded": False,
        "notes": "Bring slides.",
    }
    expect(page.locator(f"#session-{session}-facts")).to_have_text(
        "2026-12-01 · room C-101 · 35 seats · Workshop · Design, Editorial"
    )
    screenshot(page, "session-scheduled")


@sqlite_only
def test_refusals_are_shown_as_messages(pages: Pages, live: Live) -> None:
    # live, so that a signed-out reader may still see it
    project = live.add_project("Refusals target", live=True)
    live.add_user("Rhea", "reviewer")
    live.add_user("Remy", "reviewer")
    first = pages.open("Rhea", f"/projects/{project}")
    second = pages.open("Remy", f"/projects/{project}")
    for page in (first, second):
        rendered(page, "project", project)
        page.evaluate("window.statemgr.stop()")

    # 401: signed out (in another tab) since the page was loaded
    token = first.get_attribute('meta[name="csrf-token"]', "content")
    first.request.post(f"{live.url}/login", form={"user_id": "", "csrf_token": token})
    # 403: no longer a reviewer
    live.set_role("Remy", "viewer")

    for page, text, status in (
        (first, "Approve needs the role reviewer; log in first", 401),
        (second, "Approve needs the role reviewer", 403),
    ):
        page.click(button("project", project, "review.approve"))
        expect(page.locator(f"{obj('project', project)} [data-statemgr-message]")).to_have_text(text)
        events = page.evaluate("window.__statemgr")
        assert [(e["type"], e["detail"]["problem"]["status"]) for e in events] == [("statemgr:error", status)]


@sqlite_only
def test_every_transition_works_through_the_client(pages: Pages, live: Live) -> None:
    project = live.add_project("Tour", sessions=["Opening"])
    path = f"/projects/{project}"
    rita = pages.open("Rita", path)
    olivia = pages.open("Olivia", path)
    rendered(olivia, "project", project)
    session = int(olivia.get_attribute('[data-statemgr^="session:"]', "data-statemgr").split(":")[1])

    def perform(page: t.Any, kind: str, id: int, transition: str, badge: str, **fill: t.Any) -> None:
        page.click(button(kind, id, transition))
        if fill:
            dialog = page.locator("dialog.statemgr-dialog")
            for selector, value in fill.items():
                control = dialog.locator(selector.replace("_", "-"))
                if selector == "select":
                    control.select_option(label=value)
                elif selector == "input_type_checkbox":
                    control.set_checked(value)
                else:
                    control.fill(value)
            dialog.locator("button[type=submit]").click()
        manager = transition.split(".")[0]
        selector = f'{obj(kind, id)} [data-statemgr-badge="{manager}"]'
        # the other page follows by itself
        for shown in (rita, olivia):
            expect(shown.locator(selector)).to_have_text(badge)

    # the review, with the reject form's select, textarea and checkbox
    rita.click(button("project", project, "review.reject"))
    dialog = rita.locator("dialog.statemgr-dialog")
    dialog.locator("select").select_option(label="Legal")
    dialog.locator("textarea").fill("Check the image rights.")
    dialog.locator("input[type=checkbox]").uncheck()
    dialog.locator("button[type=submit]").click()
    expect(olivia.locator(f'{obj("project", project)} [data-statemgr-badge="review"]')).to_have_text("Rejected")
    perform(olivia, "project", project, "review.resubmit", "Pending")
    perform(rita, "project", project, "review.approve", "Approved")
    # publish, then the session's whole life
    now = datetime.datetime.now(datetime.UTC)
    perform(
        olivia,
        "project",
        project,
        "state.publish",
        "Live",
        **{"input[type=datetime-local]": now.strftime("%Y-%m-%dT%H:%M")},
    )
    olivia.click(button("session", session, "state.publish"))
    dialog = olivia.locator("dialog.statemgr-dialog")
    schedule(dialog, day="2026-12-02", room="A-001", seats="12", tracks=["Editorial"])
    dialog.locator("button[type=submit]").click()
    expect(olivia.locator(f"{obj('session', session)} [data-statemgr-badge]")).to_have_text("Published")
    perform(olivia, "session", session, "state.unpublish", "Draft")
    perform(olivia, "session", session, "state.delete", "Deleted")
    # and the project's
    perform(olivia, "project", project, "state.withdraw", "Withdrawn", textarea="Moved to next year.")
    perform(olivia, "project", project, "state.redraft", "Draft")
    perform(olivia, "project", project, "state.delete", "Deleted")
    history = olivia.evaluate(f"window.statemgr.history('project', {project})")
    assert [r["transition"] for r in history["records"]] == [
        "reject",
        "resubmit",
        "approve",
        "publish",
        "withdraw",
        "redraft",
        "delete",
    ]
    # the page's own history lists the session's steps among the project's
    expect(olivia.locator("#project-history li")).to_have_count(10)
    expect(olivia.locator("#project-history")).to_contain_text("Olivia: Delete session “Opening”")
    screenshot(olivia, "project-history")


def serve_html(html: str, route: t.Any) -> None:
    route.fulfill(
        content_type="text/html",
        headers={"Content-Security-Policy": "default-src 'self'; script-src 'nonce-n0nce'"},
        body=html,
    )


@sqlite_only
def test_script_tag_options_and_csp_nonce(pages: Pages, live: Live) -> None:
    from flask_statemgr.extension import statemgr_script

    project = live.add_project("Embedded")
    with live.app.test_request_context():
        tags = {
            "nonce": statemgr_script(nonce="n0nce", hide_unavailable=True, poll_interval=500),
            "none": statemgr_script(),
        }
    opened = {}
    for name, tag in tags.items():
        html = (
            f"<!doctype html><html><head>{tag}</head><body>"
            f'<div data-statemgr="project:{project}"><b data-statemgr-badge="review"></b></div>'
            "</body></html>"
        )
        page = pages.new_page("Rita")
        # a page of the app whose policy allows only scripts with its nonce
        page.route(f"{live.url}/embedded", functools.partial(serve_html, html))
        page.goto(f"{live.url}/embedded")
        opened[name] = page

    page = opened["nonce"]
    rendered(page, "project", project)
    expect(page.locator("[data-statemgr-badge=review]")).to_have_text("Pending")
    # hide_unavailable: only what Rita may do now
    assert buttons(page, "project", project) == {"review.approve": (True, ""), "review.reject": (True, "")}
    assert page.evaluate("[window.statemgr.pollInterval, window.statemgr.hideUnavailable]") == [500, True]
    # without the nonce the policy blocks the client: the nonce is what let it run
    blocked = opened["none"]
    blocked.wait_for_function("window.__csp.length > 0")
    assert blocked.evaluate("window.statemgr") is None
    assert blocked.get_attribute(obj("project", project), "data-state") is None


@sqlite_only
def test_the_app_in_german(pages: Pages, live: Live) -> None:
    """The header's switch turns the app, the extension's messages, the
    client's copy of the schema and WTForms' messages German."""
    pending = live.add_project("Sprache ausstehend")
    approved = live.add_project("Sprache freigegeben", review="approved")
    published = live.add_project("Sprache online", review="approved", live=True)
    page = pages.open("Eddie", f"/projects/{pending}")
    rendered(page, "project", pending)
    assert buttons(page, "project", pending)["state.publish"] == (False, "The review must be approved first")
    with page.expect_navigation():
        page.click('.language button[value="de"]')
    expect(page.locator("html")).to_have_attribute("lang", "de")
    rendered(page, "project", pending)
    # a refusal reason: the extension's sentence around the app's lazy title
    # (the German catalog's "%(object)s muss zuerst %(state)s sein")
    assert buttons(page, "project", pending)["state.publish"] == (False, "review muss zuerst freigegeben sein")
    expect(page.locator(button("project", pending, "state.publish"))).to_have_text("Veröffentlichen")
    expect(page.locator(f'{obj("project", pending)} [data-statemgr-badge="review"]')).to_have_text("Ausstehend")
    expect(page.locator("h2", has_text="Verlauf")).to_be_visible()
    storage = page.evaluate("Object.keys(sessionStorage).filter(k => k.startsWith('statemgr:schema:'))")
    # one copy of the schema per language, each with its own ETag
    assert sorted(storage) == ["statemgr:schema:/_statemgr:de", "statemgr:schema:/_statemgr:en"]
    etags = page.evaluate("[':en', ':de'].map(l => JSON.parse(sessionStorage['statemgr:schema:/_statemgr' + l]).etag)")
    assert etags[0] != etags[1]

    # a form's field errors: the dialog rendered from the German schema, and
    # the server's 422 for a rule only it knows
    page.goto(f"{live.url}/projects/{approved}")
    page.click(button("project", approved, "state.publish"))
    dialog = page.locator("dialog.statemgr-dialog")
    expect(dialog.locator('.statemgr-field[data-field="publish_at"] label')).to_contain_text("Veröffentlichen am (UTC)")
    # the client's own words, and its browser-side check in WTForms' German
    expect(dialog.get_by_role("button", name="Abbrechen")).to_be_visible()
    dialog.locator("button[type=submit]").click()
    error = dialog.locator('.statemgr-field[data-field="publish_at"] .statemgr-error')
    expect(error).to_have_text("Dieses Feld wird benötigt.")
    later = datetime.datetime.now() + datetime.timedelta(days=800)
    dialog.locator("input[type=datetime-local]").fill(later.strftime("%Y-%m-%dT%H:%M"))
    dialog.locator("button[type=submit]").click()
    expect(error).to_have_text("Höchstens ein Jahr im Voraus planen.")

    # WTForms' own messages on the classic server-rendered form
    page.goto(f"{live.url}/projects/{published}/withdraw")
    expect(page.locator("h1")).to_have_text("„Sprache online“ zurückziehen")
    page.fill("textarea[name=reason]", "Zu kurz")
    with page.expect_navigation():
        page.click("form.statemgr-form button[type=submit]")
    expect(page.locator('.statemgr-error[data-field="reason"]')).to_have_text(
        "Feld muss zwischen 10 und 500 Zeichen beinhalten."
    )
    screenshot(page, "withdraw-german-422")


@pytest.fixture(scope="module")
def coaster_live(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[str]:
    """The two-manager app of tests/coaster_app.py with post 1 (a draft),
    served on 127.0.0.1 in a thread; its URL."""
    import coaster_app
    from apps import create_app, dispose
    from coaster_app import Post, db

    app, _ = create_app(coaster_app, f"sqlite:///{tmp_path_factory.mktemp('coaster') / 'coaster.sqlite'}")
    with app.app_context():
        db.create_all()
        db.session.add(Post(body="Hello"))
        db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    server.server_close()
    dispose(app, db)


def test_the_client_offers_no_internal_half(browser: t.Any, coaster_live: str) -> None:
    # rita holds the internal submit's role and the post is where it starts
    context = browser.new_context(extra_http_headers={"X-User": "rita"})
    context.set_default_timeout(5000)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{coaster_live}/posts/1")
        rendered(page, "post", 1)
        assert set(buttons(page, "post", 1)) == {"state.publish", "state.undo", "review.review"}
    finally:
        context.close()
    assert errors == []


@sqlite_only
def test_pages_under_the_example_policy_run_and_refuse_framing(pages: Pages, live: Live) -> None:
    project = live.add_project("Framed")
    # the app's own page and the extension's page, under the nonce policy
    for path in (f"/projects/{project}", f"/_statemgr/pages/project/{project}/state/delete"):
        page = pages.open("Olivia", path)
        if path.startswith("/projects"):
            rendered(page, "project", project)
            assert buttons(page, "project", project)["state.delete"] == (True, "")
        else:
            expect(page.get_by_role("button", name="Delete")).to_be_visible()
        assert page.evaluate("window.__csp") == [], path
    # another site framing the Delete page, to clickjack its button; it is
    # served for real (on "localhost", another site than 127.0.0.1), since
    # Chromium keeps a page Playwright fulfils from framing a local address
    framed_url: list[str] = []

    def attacker(environ: t.Any, start_response: t.Any) -> t.Any:
        body = f'<iframe src="{framed_url[-1]}"></iframe>'.encode()
        start_response("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))])
        return [body]

    other = make_server("127.0.0.1", 0, attacker, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    try:
        shown = {}
        # a file with no policy frames fine: what refuses the page is its headers
        for name, path in [
            ("stylesheet", "/static/app.css"),
            ("page", f"/_statemgr/pages/project/{project}/state/delete"),
        ]:
            framed_url.append(live.url + path)
            evil = pages.new_page("Olivia")
            evil.goto(f"http://localhost:{other.server_port}/")
            [frame] = evil.main_frame.child_frames
            frame.wait_for_load_state()
            shown[name] = frame.url
    finally:
        other.shutdown()
        thread.join()
        other.server_close()
    assert shown == {"stylesheet": framed_url[0], "page": "chrome-error://chromewebdata/"}
