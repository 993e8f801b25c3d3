"""Redirects stay on the site: the ``next`` value of the default pages, the
``Referer`` fallback and the example app's login switcher all go through
:func:`flask_statemgr.redirects.same_site_path`, which reads a target as a
browser reads a ``Location`` header."""

from __future__ import annotations

import pytest
from api_app import Project, db
from flask import Flask

from flask_statemgr.redirects import same_site_path

#: each leads a browser to evil.example when sent as a Location
LEAVING = [
    "//evil.example/x",
    "///evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    " //evil.example",
    "\t//evil.example",
    "\x00//evil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "/%5Cevil.example",
    "/%09/evil.example",
    "https://evil.example/",
    "HTTPS://evil.example/",
    "https:evil.example",
    "http:/\\evil.example",
    "javascript:alert(1)",
    "evil.example",
]

STAYING = {
    "/": "/",
    "/done": "/done",
    "/projects/1?tab=history#top": "/projects/1?tab=history#top",
    "/a%2Fb": "/a%2Fb",
    "/pa\tth": "/path",
    " /done ": "/done",
    "/search?next=//evil.example": "/search?next=//evil.example",
}


@pytest.mark.parametrize("target", LEAVING, ids=repr)
def test_targets_leaving_the_site_are_refused(target: str) -> None:
    assert same_site_path(target) is None
    assert same_site_path(target, "localhost") is None


@pytest.mark.parametrize(("target", "path"), STAYING.items(), ids=repr)
def test_paths_on_the_site_pass_as_a_browser_reads_them(target: str, path: str) -> None:
    assert same_site_path(target) == path


def test_absolute_urls_pass_only_for_this_host() -> None:
    assert same_site_path("http://localhost/projects/1?x=1", "localhost") == "/projects/1?x=1"
    assert same_site_path("https://LOCALHOST/p", "localhost") == "/p"
    assert same_site_path("http://localhost/projects/1") is None
    assert same_site_path("http://localhost.evil.example/p", "localhost") is None
    assert same_site_path("http://localhost//evil.example", "localhost") is None
    assert same_site_path("ftp://localhost/p", "localhost") is None


PAGE = "/_statemgr/pages/project/1/state/publish"
ALICE = {"X-User": "alice"}


@pytest.mark.parametrize("target", ["/\t/evil.example", "/%2F/evil.example", "\\\\evil.example"], ids=repr)
def test_default_page_redirects_only_on_the_site(api: Flask, target: str) -> None:
    client = api.test_client()
    page = client.get(PAGE, headers=ALICE, query_string={"next": target})
    # the form carries the safe target, not the hostile one
    assert 'name="next" value="/"' in page.get_data(as_text=True)
    done = client.post(PAGE, headers=ALICE, query_string={"next": target}, data={"note": "ok"})
    assert done.status_code == 302
    assert done.headers["Location"] == "/"
    with api.app_context():
        assert db.session.get_one(Project, 1).state.PUBLISHED


@pytest.mark.parametrize(
    ("referrer", "location"),
    [
        ("http://localhost/projects/1?tab=x", "/projects/1?tab=x"),
        ("http://localhost/\t/evil.example", "/"),
        ("http://localhost/%2F/evil.example", "/"),
        ("https://evil.example/projects/1", "/"),
    ],
)
def test_default_page_falls_back_to_a_referer_on_the_site(api: Flask, referrer: str, location: str) -> None:
    client = api.test_client()
    done = client.post(PAGE, headers={**ALICE, "Referer": referrer}, data={"note": "ok"})
    assert done.status_code == 302
    assert done.headers["Location"] == location


@pytest.mark.parametrize(
    ("referrer", "location"),
    [
        ("http://localhost/projects/3", "/projects/3"),
        ("http://localhost//evil.example/x", "/"),
        ("http://localhost/\\evil.example", "/"),
        ("http://localhost/%2F%2Fevil.example", "/"),
        ("https://evil.example/", "/"),
    ],
)
def test_example_login_goes_back_only_on_the_site(example: Flask, referrer: str, location: str) -> None:
    example.config["WTF_CSRF_ENABLED"] = False
    response = example.test_client().post("/login", data={"user_id": "1"}, headers={"Referer": referrer})
    assert response.status_code == 302
    assert response.headers["Location"] == location
