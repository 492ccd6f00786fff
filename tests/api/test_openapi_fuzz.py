"""Schemathesis walks every operation of the served OpenAPI document with generated requests: never a 5xx, and every
answer is one the document declares (its status, content type, headers and body shape).

The API is the real one (uvicorn over a running kit, `conftest`), and the document is the one it serves. Each
operation is called with the token of a role it serves, so most requests get past authentication to the route
itself; a few go without one. Requests are sent from a thread: schemathesis's client blocks, and the server and the
worker run on this test's event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from handoff.schemas.api import ErrorBody
from handoff.schemas.operators import Role
from handoff.workers.testkit import HandoffKit
from tests.api.checks import open_case_in_ledger
from tests.api.conftest import OPERATORS, bearer
from tests.runtime import payloads

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
"""Not `positive_data_acceptance`: an event's body is any object in the document, and which one a handoff accepts
depends on the event (its trigger's model); nor `ignored_auth`, whose bad-token probes would trip the throttle
(`tests/api/test_auth.py` covers authentication)."""

EXAMPLES = 8
"""Generated requests per operation and mode: enough to reach every parameter and field, quick on two cores."""

GENERATION = {
    # The token comes from the test, per operation: a generated one would only ever be refused.
    "with-security-parameters": False,
    # Like most HTTP APIs, Handoff ignores query parameters it does not know (`?utm_source=`), so an extra one is
    # not invalid data that must be refused.
    "allow-extra-parameters": False,
}


async def test_every_operation_answers_as_documented_to_a_caller_of_its_role(
    api_url: str, tokens: dict[str, str]
) -> None:
    """Valid and invalid requests with a token of a role the route serves: no 5xx, every answer as documented."""
    schema = await _served_schema(api_url)

    for operation in _operations(schema):
        headers = bearer(tokens[_caller_for(operation)])
        await _fuzz(api_url, operation.as_strategy(GenerationMode.POSITIVE), headers)
        if _can_be_invalid(operation):
            await _fuzz(api_url, operation.as_strategy(GenerationMode.NEGATIVE), headers)


async def test_without_a_token_every_operation_answers_as_documented(api_url: str) -> None:
    """No token: a documented 401 (or the health answer), never a 5xx."""
    schema = await _served_schema(api_url)

    for operation in _operations(schema):
        await _fuzz(api_url, operation.as_strategy(GenerationMode.POSITIVE), {}, examples=5)


async def test_an_event_a_case_and_a_run_that_exist_answer_as_documented(
    api_url: str, tokens: dict[str, str], handoffs: HandoffKit
) -> None:
    """Generated payloads for an event a handoff is triggered by, and reads and decisions of a case that exists
    (owned by the operator deciding) and of its run: past the 404s that generated names and ids meet."""
    administrator = bearer(tokens["ada"])
    async with httpx.AsyncClient(base_url=api_url, headers=administrator) as http:
        sent = await http.post("/events/reservation.confirmed", json=payloads.reservation(reservation__party_size=14))
    case = await open_case_in_ledger(handoffs, sent.json()["workflow_id"])
    schema = await _served_schema(api_url)
    viewer, deciding_operator = bearer(tokens["vera"]), bearer(tokens["hana"])  # hana is front-of-house: the owner

    send_event = schema["/events/{event}"]["POST"]
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        await _fuzz(
            api_url, send_event.as_strategy(mode, path_parameters={"event": "reservation.confirmed"}), administrator
        )

    await _fuzz(api_url, schema["/cases/{case_id}"]["GET"].as_strategy(path_parameters={"case_id": case.id}), viewer)
    await _fuzz(
        api_url,
        schema["/runs/{workflow_id}"]["GET"].as_strategy(path_parameters={"workflow_id": case.workflow_id}),
        viewer,
    )
    decision = schema["/cases/{case_id}/decision"]["POST"]
    for mode in (GenerationMode.NEGATIVE, GenerationMode.POSITIVE):  # invalid bodies first, while the case is open
        await _fuzz(api_url, decision.as_strategy(mode, path_parameters={"case_id": case.id}), deciding_operator)


async def _served_schema(api_url: str) -> Any:
    async with httpx.AsyncClient(base_url=api_url) as http:
        document = (await http.get("/openapi.json")).json()
    return schemathesis.openapi.from_dict(document, config=schemathesis.Config.from_dict({"generation": GENERATION}))


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def _caller_for(operation: Any) -> str:
    """The name of an `OPERATORS` holder whose role the operation serves, an administrator when it may."""
    requirements = operation.definition.raw.get("security") or [{}]
    roles = [Role(scope) for scopes in requirements[0].values() for scope in scopes]
    if not roles or Role.ADMINISTRATOR in roles:
        return "ada"
    return next(name for name, (role, _) in OPERATORS.items() if role in roles)


def _can_be_invalid(operation: Any) -> bool:
    """Whether a request to it can be invalid at all: it takes a body, or a parameter that is more than any text (a
    text path parameter such as a case id takes every value, and /healthz takes nothing)."""
    raw = operation.definition.raw
    return "requestBody" in raw or any(p.get("schema", {}).get("type") != "string" for p in raw.get("parameters", []))


async def _fuzz(
    api_url: str, strategy: st.SearchStrategy[Any], headers: dict[str, str], examples: int = EXAMPLES
) -> None:
    """Send `examples` generated requests with `headers`, and run the checks on each answer (in a thread)."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=strategy)
    def exchange(case: Any) -> None:
        case.call_and_validate(base_url=api_url, session=session, headers=headers, checks=CHECKS)

    with requests.Session() as session:
        await asyncio.to_thread(exchange)


async def test_the_document_declares_handoffs_error_shape_for_every_error(api_url: str) -> None:
    """No FastAPI validation shape is left, and every 4xx and 5xx an operation declares is an `ErrorBody`."""
    async with httpx.AsyncClient(base_url=api_url) as http:
        document = (await http.get("/openapi.json")).json()

    error_shapes = {
        (path, method, status): answer["content"]["application/json"]["schema"].get("$ref")
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status, answer in operation["responses"].items()
        if status >= "400" and path != "/healthz"  # health answers its own status (`HealthStatus`) when down
    }
    assert set() == {"HTTPValidationError", "ValidationError"} & set(document["components"]["schemas"])
    assert {"#/components/schemas/ErrorBody"} == set(error_shapes.values())
    assert {"422", "503"} <= {status for path, _, status in error_shapes if path == "/runs"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b'{"decision": "approve", "reason": "\xff"}', "not UTF-8"), (b"[" * 5000 + b"]" * 5000, "nested too deeply")],
)
async def test_a_decision_body_the_parser_gives_up_on_is_a_422_like_an_events(
    api_url: str, tokens: dict[str, str], body: bytes, reason: str
) -> None:
    """FastAPI's own 400 for a body it cannot decode is answered as the event route answers it: 422 malformed-json."""
    async with httpx.AsyncClient(base_url=api_url, headers=bearer(tokens["hana"])) as http:
        response = await http.post("/cases/C-1/decision", content=body, headers={"content-type": "application/json"})

    refusal = ErrorBody.model_validate(response.json())
    assert (422, "malformed-json") == (response.status_code, refusal.kind)
    assert reason in refusal.detail


async def test_a_path_or_method_the_api_does_not_serve_is_answered_in_handoffs_shape(api_url: str) -> None:
    """404 and 405 come from the router, before any route: they are `ErrorBody` too, the 405 with `Allow`."""
    async with httpx.AsyncClient(base_url=api_url) as http:
        unknown = await http.get("/nowhere")
        wrong_method = await http.delete("/healthz")

    assert (404, "not-found") == (unknown.status_code, ErrorBody.model_validate(unknown.json()).kind)
    assert (405, "method-not-allowed", "GET") == (
        wrong_method.status_code,
        ErrorBody.model_validate(wrong_method.json()).kind,
        wrong_method.headers["allow"],
    )
