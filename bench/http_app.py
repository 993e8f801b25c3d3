"""The app the HTTP benchmark serves under gunicorn: the example app as it
is (``example_app.create_app()``: ``DATABASE_URL``, ``SECRET_KEY``, its
session-cookie login, Flask-WTF's CSRF protection), plus two routes the
benchmark adds for comparison, so the example app carries no benchmark code:

- ``POST /bench/bare/projects/<id>/publish``: the publish transition written
  by hand (load, check the state, the user's role, the review and the
  summary, read ``publish_at``, assign, commit) answering the whole object
  as the API does: its fields, states, and which of its transitions the
  user may perform now (the delete's cascade over the sessions included),
  built before the commit as the API builds its answer;
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
from example_app.models import Project, ProjectState, ReviewState, SessionState, db, utcnow

#: who may publish a project (``ProjectState.publish``'s roles)
PUBLISHERS = {"owner", "editor"}
DRAFT, PUBLISHED, WITHDRAWN, DELETED = (
    ProjectState.DRAFT.value,
    ProjectState.PUBLISHED.value,
    ProjectState.WITHDRAWN.value,
    ProjectState.DELETED.value,
)
PENDING, APPROVED, REJECTED = ReviewState.PENDING.value, ReviewState.APPROVED.value, ReviewState.REJECTED.value
SESSION_DELETABLE = {SessionState.DRAFT.value, SessionState.PUBLISHED.value}
SESSION_DELETED = SessionState.DELETED.value


def object_by_hand(project: Project, user: t.Any) -> dict[str, t.Any]:
    """What the API's object JSON tells, written by hand: the fields, the
    states, and for each transition whether ``user`` may perform it now."""
    roles = project.roles_for(user)
    editor = bool(PUBLISHERS & roles)
    state, review = project._state, project._review
    live = state == PUBLISHED and project.publish_at is not None and project.publish_at <= utcnow()
    sessions_deletable = all(
        s._state == SESSION_DELETED or (s._state in SESSION_DELETABLE and "owner" in s.roles_for(user))
        for s in project.sessions
    )
    return {
        "id": project.id,
        "title": project.title,
        "summary": project.summary,
        "publish_at": project.publish_at.isoformat() if project.publish_at else None,
        "withdraw_reason": project.withdraw_reason,
        "state": state,
        "live": live,
        "review": review,
        "transitions": {
            "publish": editor and state == DRAFT and review == APPROVED and bool(project.summary.strip()),
            "withdraw": editor and state == PUBLISHED,
            "redraft": editor and state == WITHDRAWN,
            "delete": "owner" in roles and state != DELETED and sessions_deletable,
            "approve": "reviewer" in roles and review == PENDING,
            "reject": "reviewer" in roles and review == PENDING,
            "resubmit": editor and review == REJECTED,
        },
    }


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
            publish_at = (
                datetime.datetime.fromisoformat(body["publish_at"]).astimezone(datetime.UTC).replace(tzinfo=None)
            )
        except (KeyError, TypeError, ValueError):
            abort(422)
        if publish_at > utcnow() + datetime.timedelta(days=365):
            abort(422)
        project._state = PUBLISHED
        project.publish_at = publish_at
        project.withdraw_reason = None
        db.session.flush()
        body = object_by_hand(project, g.user)
        db.session.commit()
        return jsonify(body)

    @app.get("/bench/trivial")
    def trivial() -> ResponseReturnValue:
        return "ok"

    return app
