"""An OpenAPI 3.1 document describing the JSON API of one app."""

from __future__ import annotations

import typing as t

from flask import current_app, request

from .api import _MAX_INT
from .events import CURSOR

if t.TYPE_CHECKING:
    from .extension import StateMgr

_PROBLEM = {"$ref": "#/components/responses/Problem"}

_CURSOR = {"type": "string", "pattern": f"^{CURSOR.pattern}$"}


def _json(schema: dict[str, t.Any], description: str) -> dict[str, t.Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document(ext: StateMgr) -> dict[str, t.Any]:
    """The document, with the exposed model names, their managers and
    transitions as enums so clients and fuzzers see the real URL space."""
    schema = ext.schema()
    models = sorted(schema["models"])
    managers = sorted({m for info in schema["models"].values() for m in info["managers"]})
    transitions = sorted(
        {n for manager in schema["managers"].values() for n in manager["transitions"]}
    )

    def param(name: str, schema: dict[str, t.Any]) -> dict[str, t.Any]:
        return {"name": name, "in": "path", "required": True, "schema": schema}

    object_params = [
        param("model", {"type": "string", "enum": models}),
        param("ident", {"type": "string"}),
    ]
    reason = {
        "type": "object",
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        "required": ["code", "message"],
    }
    problem = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "reasons": {"type": "array", "items": reason},
            "errors": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
            "plan": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
        "required": ["type", "title", "status"],
    }
    # the fields are the transition's form's (its JSON Schema is in /schema)
    body = {"type": "object", "properties": {"confirm": {"type": ["boolean", "string"]}}}
    obj = {"type": "object", "properties": {"model": {"type": "string"}, "id": {"type": "string"}, "managers": {"type": "object"}, "cursor": {"type": "string"}}, "required": ["model", "id", "managers"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "flask_statemgr JSON API", "version": str(schema["version"])},
        # the paths below are relative to the blueprint's prefix
        "servers": [{"url": request.script_root + current_app.config["STATEMGR_URL_PREFIX"]}],
        "paths": {
            "/schema": {
                "get": {
                    "operationId": "getSchema",
                    "responses": {"200": _json({"type": "object"}, "The state model"), "304": {"description": "Not modified"}},
                }
            },
            "/objects/{model}/{ident}": {
                "get": {
                    "operationId": "getObject",
                    "parameters": object_params,
                    "responses": {"200": _json(obj, "The object's states and transitions"), "404": _PROBLEM},
                }
            },
            "/objects/{model}/{ident}/{manager}/{transition}": {
                "post": {
                    "operationId": "performTransition",
                    "parameters": object_params
                    + [
                        param("manager", {"type": "string", "enum": managers}),
                        param("transition", {"type": "string", "enum": transitions}),
                    ],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {"schema": body},
                            "application/x-www-form-urlencoded": {"schema": body},
                        },
                    },
                    "responses": {
                        "200": _json(obj, "Performed; the new state"),
                        **{code: _PROBLEM for code in ("400", "401", "403", "404", "409", "413", "415", "422", "503")},
                    },
                }
            },
            "/objects/{model}/{ident}/history": {
                "get": {
                    "operationId": "getHistory",
                    "parameters": object_params,
                    "responses": {"200": _json({"type": "object"}, "The object's history"), "404": _PROBLEM},
                }
            },
            "/events": {
                "get": {
                    "operationId": "getEvents",
                    "parameters": [
                        {"name": "after", "in": "query", "schema": _CURSOR},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": _MAX_INT}},
                    ],
                    "responses": {"200": _json({"type": "object"}, "Transitions after the cursor"), "400": _PROBLEM},
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
        },
        "components": {
            "schemas": {"Problem": problem, "Reason": reason},
            "responses": {
                "Problem": {
                    "description": "A problem (RFC 9457)",
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
            },
        },
    }
