"""The JS client's modules and issue 19's buttons in a real browser, on the
example app (the fixtures and helpers are test_browser's)."""

from __future__ import annotations

import typing as t

import pytest
from playwright.sync_api import expect

# Fixtures are found by name in the module that uses them.
from test_browser import (  # noqa: F401
    Live,
    Pages,
    browser,
    buttons,
    live,
    obj,
    pages,
    rendered,
    sqlite_only,
)

pytestmark = pytest.mark.browser

MODULES = [
    "statemgr.js",
    "statemgr/client.js",
    "statemgr/events.js",
    "statemgr/dom.js",
    "statemgr/forms.js",
    "statemgr/messages.js",
]


@sqlite_only
def test_the_modules_load_under_the_example_nonce_policy(pages: Pages, live: Live) -> None:
    project = live.add_project("Modules")
    page = pages.new_page("Olivia")
    loaded: list[tuple[str, int, str]] = []
    page.on(
        "response",
        lambda r: (
            loaded.append((r.url, r.status, r.headers.get("content-type", "")))
            if "/_statemgr/static/" in r.url and r.url.endswith(".js")
            else None
        ),
    )
    page.goto(f"{live.url}/projects/{project}")
    rendered(page, "project", project)
    # each module once, by its relative import under the blueprint's URL
    assert sorted(url.removeprefix(f"{live.url}/_statemgr/static/") for url, _, _ in loaded) == sorted(MODULES)
    assert all(status == 200 and type.startswith("text/javascript") for _, status, type in loaded)
    # 'script-src' with the page's nonce only: imported modules inherit it
    assert page.evaluate("window.__csp") == []
    assert page.evaluate("typeof window.statemgr.perform") == "function"
    # the entry point still exports what users import
    exported = page.evaluate(
        """async () => {
          const m = await import("/_statemgr/static/statemgr.js");
          return [typeof m.StateClient, typeof m.StateError, m.StateClient === window.statemgr.constructor];
        }"""
    )
    assert exported == ["function", "function", True]


@sqlite_only
def test_a_disabled_action_shows_its_reason_beside_it(pages: Pages, live: Live) -> None:
    project = live.add_project("Reasons")
    page = pages.open("Victor", f"/projects/{project}")
    rendered(page, "project", project)
    shown: list[dict[str, t.Any]] = page.eval_on_selector_all(
        f"{obj('project', project)} button[data-statemgr-transition]:disabled",
        """bs => bs.map(b => {
          const text = document.getElementById(b.getAttribute("aria-describedby"));
          return {name: b.dataset.statemgrTransition, title: b.title, text: text.textContent,
                  beside: text.parentElement === b.parentElement, visible: text.checkVisibility()};
        })""",
    )
    by_name = {s["name"]: s for s in shown}
    assert by_name["state.publish"]["text"] == "The review must be approved first"
    assert by_name["state.delete"]["text"] == "Delete needs the role owner"
    # the same words as the tooltip, visible without hovering
    assert all(s["text"] == s["title"] and s["beside"] and s["visible"] for s in shown)


@sqlite_only
def test_a_deleted_project_collapses_into_one_notice(pages: Pages, live: Live) -> None:
    project = live.add_project("Short-lived")
    page = pages.open("Olivia", f"/projects/{project}")
    rendered(page, "project", project)
    assert len(buttons(page, "project", project)) > 5
    page.click(f'{obj("project", project)} button[data-statemgr-transition="state.delete"]')
    notice = page.locator(f"{obj('project', project)} [data-statemgr-final]")
    expect(notice).to_have_text("Deleted: nothing more can be done.")
    expect(notice).to_have_count(1)
    # what a reviewer still could do stays; nothing refused for the state alone
    shown = buttons(page, "project", project)
    assert set(shown) == {"review.approve", "review.reject"}
    assert shown["review.approve"] == (False, "Approve needs the role reviewer")


@sqlite_only
def test_anonymous_visitors_see_only_what_they_can_do(pages: Pages, live: Live) -> None:
    from flask_statemgr.extension import statemgr_script

    project = live.add_project("Public", review="approved", live=True)
    page = pages.open(None, f"/projects/{project}")
    rendered(page, "project", project)
    assert page.evaluate("window.statemgr.hideUnavailable") is True
    assert buttons(page, "project", project) == {}
    # signed in, the unavailable ones show disabled with their reasons
    signed_in = pages.open("Victor", f"/projects/{project}")
    rendered(signed_in, "project", project)
    assert signed_in.evaluate("window.statemgr.hideUnavailable") is False
    assert buttons(signed_in, "project", project)["state.withdraw"] == (
        False,
        "Withdraw needs the role editor or owner",
    )
    # an explicit choice wins over the default
    with live.app.test_request_context():
        assert "data-hide-unavailable" in statemgr_script(hide_unavailable=True)
        assert "data-hide-unavailable" not in statemgr_script(hide_unavailable=False)
        assert "data-hide-unavailable" in statemgr_script()
