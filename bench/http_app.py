"""The app the HTTP benchmark serves under gunicorn: the example app as it
is (``example_app.create_app()``: ``DATABASE_URL``, ``SECRET_KEY``, its
session-cookie login, Flask-WTF's CSRF protection), plus two routes the
benchmark adds for comparison, so the example app carries no benchmark code:

- ``POST /bench/bare/projects/<id>/publish``: the publish transition written
  by hand (load, check the state, the user's role, the review and the
  summary, read ``publish_at``, assign, commit, answer the new state);
- ``GET /bench/trivial``: ``ok``.

``gunicorn 'bench.http_app:create_app()'``. Both routes pass through the
app's own request hooks (the user loaded from the session, the CSRF check
on POST), as the API's routes do.
"""

from __future__ import annotations

import datetime
import typing as t

from flask import Flask, abort, g, jsonify, request
from flask.typing import ResponseReturnValue

from example_app import create_app as create_example_app
from example_app.models import Project, ProjectState, ReviewState, db, utcnow

#: who may publish a project (``ProjectState.publish``'s roles)
PUBLISHERS = {"owner", "editor"}
DRAFT, PUBLISHED = ProjectState.DRAFT.value, ProjectState.PUBLISHED.value
APPROVED = ReviewState.APPROVED.value


def create_app() -> Flask:
    app = create_example_app()

    @app.post("/bench/bare/projects/<int:ident>/publish")
    def bare_publish(ident: int) -> ResponseReturnValue:
        """``Project.state.publish`` by hand: the same checks and the same
        columns written, without the extension (no history record)."""
        project = db.session.get(Project, ident)
        if project is None:
            abort(404)
        if g.user is None:
            abort(401)
        if not PUBLISHERS & project.roles_for(g.user):
            abort(403)
        if project._state != DRAFT or project._review != APPROVED or not project.summary.strip():
            abort(409)
        # any JSON value: a missing or malformed publish_at is a 422
        body: t.Any = request.get_json(silent=True)
        try:
            # RFC 3339 with an offset, stored as naive UTC as the extension does
            publish_at = datetime.datetime.fromisoformat(body["publish_at"]).astimezone(
                datetime.timezone.utc
            ).replace(tzinfo=None)
        except (KeyError, TypeError, ValueError):
            abort(422)
        if publish_at > utcnow() + datetime.timedelta(days=365):
            abort(422)
        project._state = PUBLISHED
        project.publish_at = publish_at
        project.withdraw_reason = None
        db.session.commit()
        return jsonify({"id": project.id, "state": project._state})

    @app.get("/bench/trivial")
    def trivial() -> ResponseReturnValue:
        return "ok"

    return app
