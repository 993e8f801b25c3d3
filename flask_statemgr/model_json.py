"""The JSON state model (DESIGN §8) that the frontend fetches instead of
keeping its own copy of the rules. Titles, descriptions and labels are
rendered in the current locale, so a schema is built once per locale."""

from __future__ import annotations

import hashlib
import json
import typing as t

from .forms import form_schema, form_ui
from .i18n import json_default, resolve, text
from .manager import StateManager, bindings_of
from .states import State
from .transitions import Transition

SCHEMA_VERSION = 1


def state_json(state: State) -> dict[str, t.Any]:
    data: dict[str, t.Any] = {"kind": state.kind}
    if state.is_plain:
        data["value"] = state.value
    data["title"] = text(state.title)
    data["description"] = text(state.description)
    if state.is_group:
        assert state.manager is not None
        data["states"] = [n for n, s in state.manager.states().items() if s in state.members]
    elif state.base is not None:
        data["base"] = state.base.name
    if state.metadata:
        data["metadata"] = resolve(state.metadata)
    return data


def state_ref(state: State) -> str:
    """``"ReviewState.APPROVED"``: a state named across managers."""
    owner = state.manager.__name__ if state.manager is not None else "?"
    return f"{owner}.{state.name}"


def transition_json(manager: type[StateManager], transition: Transition) -> dict[str, t.Any]:
    form = transition.form
    return {
        "title": text(transition.title),
        "description": text(transition.description),
        "from": [n for n, s in manager.states().items() if s in transition.sources],
        "to": transition.target.name,
        "roles": sorted(transition.roles) if transition.roles is not None else None,
        "form": form_schema(form) if form is not None else None,
        # JSON Schema tools refuse unknown keywords, so the presentation
        # hints sit beside the schema, not in it.
        "ui": form_ui(form) if form is not None else None,
        "requires": {path: state_ref(s) for path, s in transition.requires.items()},
        "cascade": dict(transition.cascade),
        "internal": transition.internal,
        "metadata": {k: v for k, v in resolve(transition.metadata).items() if _is_json(v)},
    }


def _is_json(value: t.Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def manager_json(manager: type[StateManager]) -> dict[str, t.Any]:
    return {
        "states": {name: state_json(s) for name, s in manager.states().items()},
        "transitions": {name: transition_json(manager, tr) for name, tr in manager.transitions().items()},
    }


def build_schema(models: t.Mapping[str, type]) -> dict[str, t.Any]:
    """The state model of the exposed ``models`` (name to model class) and of
    every manager they use or require."""
    managers: dict[str, type[StateManager]] = {}
    model_json: dict[str, t.Any] = {}
    for name, model in models.items():
        used = {attr: type(b) for attr, b in bindings_of(model).items()}
        model_json[name] = {"managers": {attr: m.__name__ for attr, m in used.items()}}
        for manager in used.values():
            _collect(manager, managers)
    return {
        "version": SCHEMA_VERSION,
        "managers": {name: manager_json(m) for name, m in managers.items()},
        "models": model_json,
    }


def _collect(manager: type[StateManager], into: dict[str, type[StateManager]]) -> None:
    if into.get(manager.__name__) is manager:
        return
    into[manager.__name__] = manager
    for transition in manager.transitions().values():
        for state in transition.requires.values():
            if state.manager is not None:
                _collect(state.manager, into)


def dump(schema: t.Mapping[str, t.Any]) -> bytes:
    """The canonical JSON bytes: key order as built, so equal models give
    equal bytes in every process."""
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False, default=json_default).encode()


def etag(body: bytes, locale: str | None = None) -> str:
    """The content hash of ``body`` in ``locale``: the locale is hashed too,
    so one locale's ETag never revalidates another's representation, even
    where their texts happen to be equal."""
    digest = hashlib.sha256(body)
    if locale is not None:
        digest.update(b"\0" + locale.encode())
    return digest.hexdigest()
