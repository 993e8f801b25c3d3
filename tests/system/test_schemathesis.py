"""schemathesis against the OpenAPI document the extension serves: every
operation, with data that fits the document and data that does not, as
several users, through the WSGI app. No answer is a 5xx, every answer
matches the document, and every error is ``application/problem+json``."""

from __future__ import annotations

import typing as t

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

#: "perform" stands for every transition's own operation (perform_…)
OPERATIONS = ["getSchema", "getObject", "perform", "getHistory", "getEvents"]
#: the seeded objects and one that is not there; users and strangers
IDENTS = ["1", "2", "3", "4", "5", "6", "999"]
USERS = ["alice", "bob", "carol", "", "mallory"]


def targets(app: t.Any) -> list[dict[str, str]]:
    """Path parameters naming a seeded object and, for a transition, one of
    its own: the document's enums are every model's, so most generated paths
    are 404s that never reach the checks or the body."""
    state_model = app.test_client().get("/_statemgr/schema").get_json()
    found = [{"ident": ident} for ident in IDENTS]
    for model, info in state_model["models"].items():
        for ident in IDENTS:
            found.append({"model": model, "ident": ident})
            for manager, name in info["managers"].items():
                for transition in state_model["managers"][name]["transitions"]:
                    found.append({"model": model, "ident": ident, "manager": manager, "transition": transition})
    return found


def cases(operation: t.Any, mode: GenerationMode, paths: list[dict[str, str]]) -> st.SearchStrategy[t.Any]:
    generated = operation.as_strategy(generation_mode=mode)
    wanted = {parameter.name for parameter in operation.path_parameters}
    fitting = [p for p in paths if set(p) == wanted]
    if not fitting:
        return t.cast(st.SearchStrategy[t.Any], generated)
    targeted = st.sampled_from(fitting).flatmap(
        lambda path: operation.as_strategy(generation_mode=mode, path_parameters=path)
    )
    return t.cast(st.SearchStrategy[t.Any], generated | targeted)


@pytest.mark.parametrize(
    ("operation_id", "mode"),
    [
        (operation_id, mode)
        for operation_id in OPERATIONS
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        # the schema takes no parameter that could be made invalid
        if operation_id != "getSchema" or mode is GenerationMode.POSITIVE
    ],
    ids=str,
)
def test_every_operation(secured: t.Callable[..., t.Any], operation_id: str, mode: GenerationMode) -> None:
    app = secured()
    schema = schemathesis.openapi.from_wsgi("/_statemgr/openapi.json", app)
    if operation_id == "perform":
        ids = [item["post"]["operationId"] for item in schema.raw_schema["paths"].values() if "post" in item]
        assert ids and all(i.startswith("perform_") for i in ids)
    else:
        ids = [operation_id]
    for one in ids:
        run_operation(app, schema.find_operation_by_id(one), mode, examples=15 if operation_id == "perform" else 25)


def run_operation(app: t.Any, operation: t.Any, mode: GenerationMode, examples: int) -> None:
    # a valid body may still be refused by the form's own validators, which
    # the schema cannot say everything of (DESIGN §8)
    excluded = [positive_data_acceptance] if operation.method.upper() == "POST" else []

    @given(case=cases(operation, mode, targets(app)), user=st.sampled_from(USERS))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: t.Any, user: str) -> None:
        case.headers = {**(case.headers or {}), "X-User": user}
        response = case.call_and_validate(excluded_checks=excluded)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert response.headers["content-type"] == ["application/problem+json"], response.text
            assert response.json()["status"] == response.status_code

    check()
