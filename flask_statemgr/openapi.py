"""An OpenAPI 3.1 document describing the JSON API of one app.

Each exposed transition is an operation of its own
(``POST /objects/project/{ident}/state/publish``, operation id
``perform_project_state_publish``) whose request body is its form's JSON
Schema, so a generated client has a typed method and body per transition.
"""

from __future__ import annotations

import typing as t

from flask import Response, current_app, request

from .api import MAX_INT, bp, current_statemgr, json_response
from .events import CURSOR

if t.TYPE_CHECKING:
    from .extension import StateMgr

_PROBLEM = {"$ref": "#/components/responses/Problem"}

_CURSOR = {"type": "string", "pattern": f"^{CURSOR.pattern}$"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, t.Any], description: str, **extra: t.Any) -> dict[str, t.Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


def _object(properties: dict[str, t.Any], required: t.Iterable[str] = (), **extra: t.Any) -> dict[str, t.Any]:
    """An object schema; other members may appear (the API may grow), so
    ``additionalProperties`` stays open."""
    return {"type": "object", "properties": properties, "required": list(required), **extra}


def _map(values: dict[str, t.Any]) -> dict[str, t.Any]:
    return {"type": "object", "additionalProperties": values}


_STRING = {"type": "string"}
_INTEGER = {"type": "integer"}
_BOOLEAN = {"type": "boolean"}
_STRINGS = {"type": "array", "items": _STRING}
_VALUE = {"type": ["integer", "string"]}

#: the response bodies, by component name
SCHEMAS: dict[str, dict[str, t.Any]] = {
    "Reason": _object({"code": _STRING, "message": _STRING}, ["code", "message"]),
    "Problem": _object(
        {
            "type": _STRING,
            "title": _STRING,
            "status": _INTEGER,
            "detail": _STRING,
            "reasons": {"type": "array", "items": _ref("Reason")},
            "errors": _map(_STRINGS),
            "plan": _map(_INTEGER),
        },
        ["type", "title", "status"],
    ),
    "State": _object(
        {
            "kind": {"type": "string", "enum": ["state", "group", "conditional"]},
            "value": _VALUE,
            "title": _STRING,
            "description": _STRING,
            "states": _STRINGS,
            "base": _STRING,
            "metadata": {"type": "object"},
        },
        ["kind", "title"],
    ),
    "TransitionInfo": _object(
        {
            "title": _STRING,
            "description": _STRING,
            "from": _STRINGS,
            "to": _STRING,
            "roles": {"type": ["array", "null"], "items": _STRING},
            "form": {"type": ["object", "null"], "description": "The form's JSON Schema (2020-12)"},
            "requires": _map(_STRING),
            "cascade": _map(_STRING),
            "internal": _BOOLEAN,
            "metadata": {"type": "object"},
        },
        ["title", "from", "to"],
    ),
    "Manager": _object(
        {"states": _map(_ref("State")), "transitions": _map(_ref("TransitionInfo"))},
        ["states", "transitions"],
    ),
    "StateModel": _object(
        {
            "version": _INTEGER,
            "managers": _map(_ref("Manager")),
            "models": _map(_object({"managers": _map(_STRING)}, ["managers"])),
        },
        ["version", "managers", "models"],
    ),
    "TransitionState": _object(
        {
            "title": _STRING,
            "available": _BOOLEAN,
            "status": _INTEGER,
            "reasons": {"type": "array", "items": _ref("Reason")},
            "form": _BOOLEAN,
            "changes": _map(_INTEGER),
        },
        ["title", "available", "status", "reasons", "form"],
    ),
    "ManagerState": _object(
        {
            "manager": _STRING,
            "value": _VALUE,
            "state": _STRING,
            "current": _STRING,
            "title": _STRING,
            "states": _map(_BOOLEAN),
            "transitions": _map(_ref("TransitionState")),
        },
        ["manager", "value", "state", "current", "title", "states", "transitions"],
    ),
    "Object": _object(
        {
            "model": _STRING,
            "id": _STRING,
            "label": _STRING,
            "managers": _map(_ref("ManagerState")),
            "cursor": _CURSOR,
        },
        ["model", "id", "managers"],
    ),
    "Record": _object(
        {
            "id": _INTEGER,
            "model": _STRING,
            "object_id": _STRING,
            "manager": _STRING,
            "transition": _STRING,
            "source": _STRING,
            "target": _STRING,
            "user_id": {"type": ["string", "null"]},
            "at": {"type": "string", "format": "date-time"},
            "payload": {"type": ["object", "null"]},
            # why a stored payload could not be read (its blob is corrupt or
            # missing); the payload is then null
            "payload_error": {"enum": ["corrupt", "missing", None]},
            "parent_id": {"type": ["integer", "null"]},
        },
        ["id", "model", "object_id", "manager", "transition", "source", "target", "at"],
    ),
    "Performed": _object(
        {
            "transition": _STRING,
            "manager": _STRING,
            "source": _STRING,
            "target": _STRING,
            "record": {"oneOf": [_ref("Record"), {"type": "null"}]},
            "steps": _INTEGER,
        },
        ["transition", "manager", "source", "target", "steps"],
    ),
    "PerformResult": {
        "allOf": [_ref("Object"), _object({"result": _ref("Performed")}, ["result"])],
    },
    "History": _object({"records": {"type": "array", "items": _ref("Record")}}, ["records"]),
    "Event": _object(
        {
            "id": _INTEGER,
            "model": _STRING,
            "object_id": _STRING,
            "manager": _STRING,
            "transition": _STRING,
            "source": _STRING,
            "target": _STRING,
            "at": {"type": "string", "format": "date-time"},
            "cursor": _CURSOR,
        },
        ["id", "model", "object_id", "manager", "transition", "source", "target", "at", "cursor"],
    ),
    "Events": _object(
        {
            "events": {"type": "array", "items": _ref("Event")},
            "cursor": _CURSOR,
            # committed records held back behind an older writing transaction
            "pending": {"type": "boolean"},
        },
        ["events", "cursor"],
    ),
}

_ETAG = {
    "description": "The content hash of the state model; send it back in If-None-Match",
    "schema": _STRING,
}


def _csrf_header(required: bool) -> dict[str, t.Any]:
    return {
        "name": "X-CSRFToken",
        "in": "header",
        "required": required,
        "description": (
            "Flask-WTF's CSRF token (the page's <meta name=\"csrf-token\">), required when the app uses CSRFProtect"
        ),
        "schema": _STRING,
    }


def request_body(form: dict[str, t.Any] | None) -> dict[str, t.Any]:
    """A transition's body: its form's schema, and ``confirm`` for a
    cascade that asks for it."""
    schema: dict[str, t.Any] = {"type": "object", "properties": {}}
    if form is not None:
        # the dialect is the document's (jsonSchemaDialect)
        schema = {k: v for k, v in form.items() if k != "$schema"}
    confirm = {
        # a string too, as a form-encoded body sends it: "true", "yes", "on"
        # or "1" confirm, any other text does not
        "type": ["boolean", "string"],
        "description": "Confirm a cascade that changes more than this object (409 asks for it)",
    }
    schema = {**schema, "properties": {**schema.get("properties", {}), "confirm": confirm}}
    return {
        "required": False,
        "content": {
            "application/json": {"schema": schema},
            "application/x-www-form-urlencoded": {"schema": schema},
        },
    }


def openapi_document(ext: StateMgr) -> dict[str, t.Any]:
    """The document, with one operation per exposed transition and the
    exposed model names as an enum, so clients and fuzzers see the real URL
    space."""
    schema = ext.schema()
    models = sorted(schema["models"])
    csrf = "csrf" in current_app.extensions

    def path_param(name: str, param_schema: dict[str, t.Any]) -> dict[str, t.Any]:
        return {"name": name, "in": "path", "required": True, "schema": param_schema}

    ident = path_param("ident", {"type": "string"})
    object_params = [path_param("model", {"type": "string", "enum": models}), ident]
    paths: dict[str, t.Any] = {
        "/schema": {
            "get": {
                "operationId": "getSchema",
                "parameters": [
                    {"name": "If-None-Match", "in": "header", "required": False, "schema": _STRING},
                ],
                "responses": {
                    "200": _json(_ref("StateModel"), "The state model", headers={"ETag": _ETAG}),
                    "304": {"description": "Not modified", "headers": {"ETag": _ETAG}},
                },
            }
        },
        "/objects/{model}/{ident}": {
            "get": {
                "operationId": "getObject",
                "parameters": object_params,
                "responses": {"200": _json(_ref("Object"), "The object's states and transitions"), "404": _PROBLEM},
            }
        },
        "/objects/{model}/{ident}/history": {
            "get": {
                "operationId": "getHistory",
                "parameters": object_params,
                "responses": {
                    "200": _json(_ref("History"), "The object's history"),
                    **{code: _PROBLEM for code in ("401", "403", "404")},
                },
            }
        },
        "/events": {
            "get": {
                "operationId": "getEvents",
                "parameters": [
                    {"name": "after", "in": "query", "schema": _CURSOR},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_INT}},
                ],
                "responses": {"200": _json(_ref("Events"), "Transitions after the cursor"), "400": _PROBLEM},
            }
        },
        "/events/stream": {
            "get": {
                "operationId": "streamEvents",
                "parameters": [
                    {"name": "after", "in": "query", "schema": _CURSOR},
                    {"name": "Last-Event-ID", "in": "header", "schema": _CURSOR},
                ],
                "responses": {
                    "200": {
                        "description": "The transitions after the cursor as Server-Sent Events, then as they commit",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    "400": _PROBLEM,
                    "503": _PROBLEM,
                },
            }
        },
    }
    for model in models:
        for manager, manager_name in schema["models"][model]["managers"].items():
            for name, transition in schema["managers"][manager_name]["transitions"].items():
                if transition.get("internal"):
                    continue
                paths[f"/objects/{model}/{{ident}}/{manager}/{name}"] = {
                    "post": {
                        "operationId": f"perform_{model}_{manager}_{name}",
                        "summary": transition["title"] or name,
                        "description": transition["description"],
                        "parameters": [ident, _csrf_header(csrf)],
                        "requestBody": request_body(transition["form"]),
                        "responses": {
                            "200": _json(_ref("PerformResult"), "Performed; the new state"),
                            **{
                                code: _PROBLEM
                                for code in ("400", "401", "403", "404", "409", "413", "415", "422", "503")
                            },
                        },
                    }
                }
    return {
        "openapi": "3.1.0",
        "info": {"title": "flask_statemgr JSON API", "version": str(schema["version"])},
        # the paths below are relative to the blueprint's prefix
        "servers": [{"url": request.script_root + current_app.config["STATEMGR_URL_PREFIX"]}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                "Problem": {
                    "description": "A problem (RFC 9457)",
                    "content": {"application/problem+json": {"schema": _ref("Problem")}},
                }
            },
        },
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document of the current app's API."""
    return json_response(openapi_document(current_statemgr()))
