"""Tokens and roles over HTTP: every route in the OpenAPI document but health needs a token of a role it serves,
and an address that sends too many bad tokens is held off with 429 until its window passes."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from handoff.schemas.operators import Role
from handoff.workers.api import create_app
from handoff.workers.testkit import HandoffKit
from tests.api.conftest import OPERATORS, bearer, serving_url

READERS = {Role.VIEWER, Role.OPERATOR, Role.ADMINISTRATOR}
ROLES: dict[tuple[str, str], set[Role]] = {
    ("post", "/events/{event}"): {Role.SOURCE, Role.ADMINISTRATOR},
    ("get", "/cases"): READERS,
    ("get", "/cases/{case_id}"): READERS,
    ("post", "/cases/{case_id}/decision"): {Role.OPERATOR},
    ("get", "/runs"): READERS,
    ("get", "/runs/{workflow_id}"): READERS,
    ("get", "/report"): READERS,
    ("post", "/cases/{case_id}/claim"): {Role.OPERATOR},
    ("post", "/cases/{case_id}/release"): {Role.OPERATOR},
    ("post", "/cases/{case_id}/reassign"): {Role.OPERATOR},
    ("post", "/cases/{case_id}/comments"): {Role.OPERATOR},
    ("get", "/cases/{case_id}/history"): READERS,
    ("post", "/cases/decisions"): {Role.OPERATOR},
    ("post", "/codec/encode"): {Role.ADMINISTRATOR},
    ("post", "/codec/decode"): {Role.ADMINISTRATOR},
    ("get", "/budget"): READERS,
    ("post", "/handoffs/{name}/resume"): {Role.OPERATOR, Role.ADMINISTRATOR},
    ("post", "/handoffs/{name}/reject-held"): {Role.OPERATOR, Role.ADMINISTRATOR},
}
"""The roles each route serves: what the issue asks for, written out here rather than read from the app."""
EVENTS = ("post", "/events/{event}")
"""The route a signature (`test_signed_events`) lets in as well as a token."""
OPEN = {("get", "/healthz")}
"""Routes that need no token."""

HOLDER = {role: next(name for name, (held, _) in OPERATORS.items() if held == role) for role in Role}
"""A name in the `tokens` fixture for each role."""
PATH_VALUES = {
    "event": "reservation.confirmed",
    "case_id": "C-000000000000",
    "workflow_id": "reservation-to-pos/R-0",
    "name": "no-such-handoff",
}
"""What each path parameter is filled with: nothing that exists, and nothing is sent that could start a run."""


def routes(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document."""
    return [(method, path) for path, operations in spec["paths"].items() for method in operations]


def kind(response: httpx.Response) -> str | None:
    """The error's `kind`, or None for an answer that is not an error body (a route that let the request in)."""
    body = response.json()
    return body.get("kind") if isinstance(body, dict) else None


def url(path: str) -> str:
    def value(parameter: re.Match[str]) -> str:
        name = parameter.group(1)
        assert name in PATH_VALUES, f"add a value for the path parameter {name!r} of {path} to PATH_VALUES"
        return PATH_VALUES[name]

    return re.sub(r"\{(\w+)\}", value, path)


async def test_every_route_but_health_needs_a_token(anonymous: httpx.AsyncClient) -> None:
    """Without a token each route is a 401 saying how to send one, with `WWW-Authenticate: Bearer` (for an event
    it is `unsigned`: a source's signature would do too); health and the OpenAPI pages (which hold no data) answer
    anyone."""
    spec = (await anonymous.get("/openapi.json")).json()

    answers = {(m, p): await anonymous.request(m.upper(), url(p)) for m, p in routes(spec)}

    assert OPEN | set(ROLES) == set(answers), "a route was added: say which roles it serves in ROLES"
    unauthenticated = {route: "unsigned" if route == EVENTS else "unauthenticated" for route in ROLES}
    assert {route: (401, "Bearer", unauthenticated[route]) for route in ROLES} == {
        route: (r.status_code, r.headers.get("www-authenticate"), kind(r))
        for route, r in answers.items()
        if route not in OPEN
    }
    assert "Authorization: Bearer <token>" in answers[EVENTS].json()["detail"]
    assert [200, 200, 200, 200] == [
        answers["get", "/healthz"].status_code,
        *[(await anonymous.get(page)).status_code for page in ("/docs", "/redoc", "/openapi.json")],
    ]


async def test_every_route_refuses_the_roles_it_does_not_serve(
    anonymous: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    """Each route answers 403 naming the roles it needs to a token of any other role, and lets its own roles in."""
    spec = (await anonymous.get("/openapi.json")).json()
    refused: dict[tuple[str, str, Role], tuple[int, str]] = {}
    let_in: dict[tuple[str, str, Role], int] = {}

    for method, path in routes(spec):
        if (method, path) in OPEN:
            continue
        roles = ROLES[method, path]
        for role in Role:
            response = await anonymous.request(method.upper(), url(path), headers=bearer(tokens[HOLDER[role]]))
            if role in roles:
                let_in[method, path, role] = response.status_code
            else:
                refused[method, path, role] = (response.status_code, kind(response))

    assert {key: (403, "wrong-role") for key in refused} == refused
    assert [] == [(key, status) for key, status in let_in.items() if status in (401, 403, 429)]
    viewer = await anonymous.post(url("/cases/{case_id}/decision"), headers=bearer(tokens["vera"]))
    source = await anonymous.get("/report", headers=bearer(tokens["till"]))
    assert "This needs the operator role; you (vera) are a viewer." in viewer.json()["detail"]
    assert "This needs the viewer, operator or administrator role; you (till) are a source." in source.json()["detail"]


async def test_openapi_documents_the_token_and_the_roles_of_each_route(anonymous: httpx.AsyncClient) -> None:
    """The bearer scheme is declared; each route lists its roles as the scheme's scopes, and its 401, 403 and 429
    answers with the error body; health has no security requirement."""
    spec = (await anonymous.get("/openapi.json")).json()
    operations = {(m, p): spec["paths"][p][m] for m, p in routes(spec)}
    error_body = {"$ref": "#/components/schemas/ErrorBody"}

    assert {"type": "http", "scheme": "bearer"} == {
        key: spec["components"]["securitySchemes"]["ApiToken"][key] for key in ("type", "scheme")
    }
    assert {route: [{"ApiToken": sorted(roles)}] for route, roles in ROLES.items()} == {
        route: [{"ApiToken": sorted(op["security"][0]["ApiToken"])}]
        for route, op in operations.items()
        if "security" in op
    }
    assert {route: [error_body] * 3 for route in ROLES} == {
        route: [op["responses"][code]["content"]["application/json"]["schema"] for code in ("401", "403", "429")]
        for route, op in operations.items()
        if route not in OPEN
    }
    assert "Retry-After" in operations["get", "/cases"]["responses"]["429"]["headers"]


async def test_bad_tokens_from_one_address_are_held_off_with_429_until_the_window_passes(
    handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """After the limit of bad tokens within the window, that address gets 429 and `Retry-After`, even with a good
    token; another address, and health, are not affected; once the window passes the address is let in again."""
    window = 3.0
    settings = handoffs.settings.model_copy(update={"auth_failure_limit": 3, "auth_failure_window_seconds": window})
    app = create_app(settings, handoffs.app, client=handoffs.client, ledger=handoffs.ledger)
    good, bad = bearer(tokens["vera"]), bearer("guessed-token")
    # uvicorn takes the client address from X-Forwarded-For when the peer is loopback (a proxy it trusts).
    guesser, neighbour = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.2"}
    async with serving_url(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        guesses = [(await http.get("/cases", headers={**guesser, **bad})).status_code for _ in range(3)]
        held = await http.get("/cases", headers={**guesser, **good})
        without = await http.get("/report", headers=guesser)
        health = await http.get("/healthz", headers=guesser)
        other = [(await http.get("/cases", headers={**neighbour, **h})).status_code for h in (bad, good)]
        await asyncio.sleep(window + 0.2)
        after = [(await http.get("/cases", headers={**guesser, **h})).status_code for h in (good, bad, good)]

    assert [401, 401, 401] == guesses
    assert (429, 429, "too-many-bad-tokens") == (held.status_code, without.status_code, held.json()["kind"])
    assert 1 <= int(held.headers["retry-after"]) <= window
    assert "203.0.113.7" in held.json()["detail"]
    assert (200, [401, 200], [200, 401, 200]) == (health.status_code, other, after)
