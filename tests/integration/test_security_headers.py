"""Headers that keep browsers from misusing the HTML pages: the extension's
default pages refuse sniffing, framing and leaking their URLs in the
Referer; the example app adds a nonce-based CSP and a SameSite session
cookie. tests/system/test_browser.py shows both in Chromium."""

from __future__ import annotations

import re

from flask import Flask

PAGE = "/_statemgr/pages/project/1/state/publish"
ALICE = {"X-User": "alice"}


def assert_page_headers(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers.getlist("Content-Security-Policy")


def test_default_pages_send_security_headers_with_every_answer(api: Flask) -> None:
    client = api.test_client()
    answers = [
        client.get(PAGE, headers=ALICE),  # the form
        client.post(PAGE, headers=ALICE, data={"note": "x" * 50}),  # refused by the form
        client.post(PAGE, headers=ALICE, data={"note": "ok"}),  # done: the redirect
        client.get(PAGE, headers=ALICE),  # no longer possible
        client.get("/_statemgr/pages/project/987/state/publish"),  # missing
    ]
    assert [r.status_code for r in answers] == [200, 422, 302, 409, 404]
    for response in answers:
        assert_page_headers(response)


def test_headers_the_app_chose_are_kept(api: Flask) -> None:
    @api.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int, dict[str, str]]:
        # an app that frames its own pages says so in its error page too
        return "gone", 404, {"Content-Security-Policy": "frame-ancestors 'self'", "X-Frame-Options": "SAMEORIGIN"}

    response = api.test_client().get("/_statemgr/pages/project/987/state/publish")
    assert response.status_code == 404
    assert response.headers.getlist("Content-Security-Policy") == ["frame-ancestors 'self'"]
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_example_pages_allow_only_scripts_with_their_nonce(example: Flask) -> None:
    client = example.test_client()
    nonces = []
    for path in ("/", "/_statemgr/pages/project/1/state/delete"):
        response = client.get(path)
        policy = response.headers["Content-Security-Policy"]
        [nonce] = re.findall(r"script-src 'nonce-([\w-]+)'", policy)
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        html = response.get_data(as_text=True)
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert len(scripts) == 2 and all(f'nonce="{nonce}"' in s for s in scripts), scripts
        nonces.append(nonce)
    # a new nonce for every answer
    assert len(set(nonces)) == 2 and all(len(n) >= 16 for n in nonces)
    # the JSON API is no page: its answers carry no page policy
    assert "Content-Security-Policy" not in client.get("/_statemgr/schema").headers


def test_example_session_cookie_is_samesite(example: Flask) -> None:
    example.config["WTF_CSRF_ENABLED"] = False
    response = example.test_client().post("/login", data={"user_id": "1"})
    [cookie] = response.headers.getlist("Set-Cookie")
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie
