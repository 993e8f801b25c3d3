"""2. Availability for a user: may the editor publish this draft now?

``publish`` needs the editor role and a title (a precondition), so every
system checks the state, a role and a condition. django-fsm-2 as the brief
and its README put it, ``can_proceed(...) and has_transition_perm(...)``;
transitions' ``may_publish(user)`` runs the conditions; python-statemachine
has no per-event check, so ``publish in sm.enabled_events(user=...)``.

Ours is timed inside a Flask app context with ``StateMgr`` on the app (how
the extension is used: the roles come through its loader), beside the same
call outside any app, and beside the check written by hand on the same
object (state, role, title).
"""

from __future__ import annotations

from .harness import Case, measure
from .report import Report
from .workload import DRAFT, EDITOR, PENDING, drafts

TITLE = "Availability of one transition for a user (role + precondition)"


def run(report: Report) -> None:
    from flask import Flask

    from flask_statemgr import StateMgr

    d = drafts()
    fsm, doc, fsm_doc, model, sm = d.fsm, d.doc, d.fsm_doc, d.model, d.sm
    app = Flask(__name__)
    StateMgr(app)
    cases = {
        "ours": Case(
            "doc.state.publish.is_available(user)",
            {"doc": doc, "user": EDITOR, "ctx": app.app_context()},
            setup="ctx.push()",
            teardown="ctx.pop()",
        ),
        "ours-bare": Case("doc.state.publish.is_available(user)", {"doc": doc, "user": EDITOR}),
        "hand": Case(
            "doc._state in sources and 'editor' in doc.roles_for(user) and bool(doc.title)",
            {"doc": doc, "user": EDITOR, "sources": frozenset({DRAFT, PENDING})},
        ),
        "django-fsm": Case(
            "can_proceed(doc.publish) and has_transition_perm(doc.publish, user)",
            {
                "doc": fsm_doc,
                "user": EDITOR,
                "can_proceed": fsm.can_proceed,
                "has_transition_perm": fsm.has_transition_perm,
            },
        ),
        "transitions": Case("model.may_publish(user)", {"model": model, "user": EDITOR}),
        "statemachine": Case("sm.publish in sm.enabled_events(user=user)", {"sm": sm, "user": EDITOR}),
    }
    namespace_ok = [bool(eval(c.stmt, c.namespace)) for k, c in cases.items() if k != "ours"]  # noqa: S307
    assert all(namespace_ok), namespace_ok
    timings = measure(cases)
    labels = {
        "ours": ("flask_statemgr", "doc.state.publish.is_available(user) in an app context (StateMgr)"),
        "ours-bare": ("flask_statemgr", "the same outside any app (default roles)"),
        "hand": ("by hand", "doc._state in sources and 'editor' in roles and bool(doc.title)"),
        "django-fsm": ("django-fsm-2", "can_proceed(doc.publish) and has_transition_perm(doc.publish, user)"),
        "transitions": ("transitions", "model.may_publish(user)"),
        "statemachine": ("python-statemachine", "sm.publish in sm.enabled_events(user=user)"),
    }
    for key, timing in timings.items():
        system, label = labels[key]
        report.timing(key, label, system, timing)
    report.compare("availability for a user, in an app context", "ours", "django-fsm", minimum=2.0)
    for key in ("transitions", "statemachine"):
        report.compare("availability for a user, in an app context", "ours", key, minimum=1.0)
    # within 4x of the check written by hand
    report.compare("availability for a user, in an app context", "ours", "hand", minimum=0.25)
