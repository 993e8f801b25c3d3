"""The app the HTTP benchmark serves under gunicorn: the benchmark's
Document exposed through the extension, a bare Flask endpoint doing the same
state change by hand, and a trivial route.

``gunicorn 'bench.http_app:create_app()'`` with ``BENCH_DATABASE_URL`` set.
The acting user is the benchmark's editor.
"""

from __future__ import annotations

import os

from flask import Flask, abort, jsonify
from flask.typing import ResponseReturnValue
from flask_sqlalchemy import SQLAlchemy

from flask_statemgr import StateMgr

from .workload import EDITOR, TRANSITIONS, Base, Document, User


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BENCH_DATABASE_URL"]
    db = SQLAlchemy(model_class=Base)
    db.init_app(app)
    statemgr = StateMgr(app, db=db)
    statemgr.expose(Document, name="document")

    @statemgr.user_loader
    def current_user() -> User:
        return EDITOR

    @app.post("/bare/document/<int:ident>/<name>")
    def bare_perform(ident: int, name: str) -> ResponseReturnValue:
        """The same state change written by hand: load, check the source
        state, the role and (for publish) the title, assign, commit, answer
        the new state."""
        if name not in TRANSITIONS:
            abort(404)
        doc = db.session.get(Document, ident)
        if doc is None:
            abort(404)
        sources, target, role = TRANSITIONS[name]
        if doc._state not in sources:
            abort(409)
        if role not in doc.roles_for(EDITOR):
            abort(403)
        if name == "publish" and not doc.title:
            abort(409)
        doc._state = target
        db.session.commit()
        return jsonify({"id": doc.id, "state": doc._state})

    @app.get("/trivial")
    def trivial() -> ResponseReturnValue:
        return "ok"

    return app
