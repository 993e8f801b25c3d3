"""``application/problem+json`` responses (RFC 9457)."""

from __future__ import annotations

import json
import typing as t

from flask import Response
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from .exceptions import ConfirmationRequired, StateMgrError, TransitionError, ValidationFailed
from .i18n import N_, gettext, json_default, text

MIMETYPE = "application/problem+json"
TYPE_PREFIX = "urn:statemgr:problem:"


class ResourceNotFound(StateMgrError):
    """No exposed model, object the user may view, manager or transition of
    that name: a 404 (an object the user may not view is indistinguishable
    from none).

    .. versionadded:: 0.1
    """

    http_status: int = 404
    title: str = N_("Not found")


def _slug(title: str) -> str:
    return "-".join(title.lower().replace("/", " ").split())


def problem(status: int, title: str, detail: str = "", **extra: t.Any) -> Response:
    """A problem document; ``extra`` members (``reasons``, ``errors``,
    ``plan``) are added as given.

    :param title: the English title, which names the ``type``; the document
        carries its translation into the request's locale.
    """
    body: dict[str, t.Any] = {
        "type": TYPE_PREFIX + _slug(title),
        "title": gettext(title),
        "status": status,
        "detail": text(detail) or gettext(title),
    }
    body.update(extra)
    return Response(json.dumps(body, default=json_default), status=status, mimetype=MIMETYPE)


def transition_problem(error: TransitionError) -> Response:
    extra: dict[str, t.Any] = {"reasons": [r.to_dict() for r in error.reasons]}
    if isinstance(error, ValidationFailed):
        extra["errors"] = error.errors
    if isinstance(error, ConfirmationRequired):
        extra["plan"] = error.plan
    return problem(error.http_status, error.title, error.message, **extra)


def error_problem(error: StateMgrError) -> Response:
    """A problem for any other error of this package; its ``title`` (else
    the status phrase) names it, since class names are no words for users."""
    status = getattr(error, "http_status", 500)
    title = getattr(error, "title", None) or HTTP_STATUS_CODES.get(status, "Error")
    return problem(status, title, str(error), reasons=[])


def http_problem(error: HTTPException) -> Response:
    status = error.code or 500
    response = problem(status, error.name, error.description or "", reasons=[])
    for key, value in error.get_headers():
        if key.lower() not in ("content-type", "content-length"):
            response.headers[key] = value
    return response
