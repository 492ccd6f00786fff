"""Who is calling, and may they: a bearer token resolved to someone in the ledger (which holds only token hashes),
whose role must be one the route serves.

Every route but `GET /healthz` takes its caller through one of the aliases below, each made by `require(*roles)`:
`Reader` (cases, runs, the report), `DecidingOperator` (a decision) and `EventSource` (an event). The roles are in
the OpenAPI document too, as the scopes of the route's `ApiToken` requirement (OpenAPI 3.1 lets a bearer scheme name
roles there), beside the 401, 403 and 429 answers every such route may give.

A missing or unknown token is a 401 that says how to get one, and an unknown token counts against the client's
address (`throttle`: too many and it gets 429); a token of another role is a 403 naming the roles needed. Deciding
also needs the operator to be in the group that owns the case now: the workflow checks that, not this module.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from handoff.activities.ledger.operators import operator_for_token
from handoff.schemas.api import ErrorBody
from handoff.schemas.operators import Operator, Role
from handoff.workers.api.context import Ready, api_context
from handoff.workers.api.errors import ApiProblem

log = structlog.get_logger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description=(
        "An API token, printed once by `handoff operators add NAME --role ROLE`. Its role (administrator, operator, "
        "viewer or source) decides which routes it may call: each route lists them as its security scopes."
    ),
)

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorBody,
        "description": "No API token, or one that matches no one.",
        "headers": {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    },
    403: {"model": ErrorBody, "description": "The token's role is not one this route serves (see its scopes)."},
    429: {
        "model": ErrorBody,
        "description": "Too many bad tokens from this address lately: wait `Retry-After` seconds.",
        "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    },
}
"""What every route that needs a token may answer before it runs: its router's `responses`."""


async def authorised_caller(
    security_scopes: SecurityScopes,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    context: Annotated[Ready, Depends(api_context)],
) -> Operator:
    """The holder of the request's token, if their role is one of the scopes the route requires."""
    address = client_address(request)
    refuse_if_throttled(context, address)
    if credentials is None:
        raise ApiProblem(
            401,
            "This needs an API token: send `Authorization: Bearer <token>` "
            "(an administrator creates one with `handoff operators add`).",
            kind="unauthenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    caller = await asyncio.to_thread(operator_for_token, context.ledger, credentials.credentials)
    if caller is None:
        context.failures.record(address)
        log.warning("api.bad_token", client=address, path=request.url.path)
        raise ApiProblem(
            401,
            "The API token is not valid: it matches no one. Ask an administrator for a new one.",
            kind="invalid-token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    needed = [Role(scope) for scope in security_scopes.scopes]
    if caller.role not in needed:
        log.info("api.wrong_role", operator=caller.name, role=caller.role.value, path=request.url.path)
        raise ApiProblem(
            403,
            f"This needs the {_either(needed)} role; you ({caller.name}) are {caller.role.article}. "
            "Use a token of that role: an administrator adds one with `handoff operators add NAME --role ROLE`.",
            kind="wrong-role",
        )
    return caller


def client_address(request: Request) -> str:
    """The address failed credentials are counted against (see `throttle`)."""
    return request.client.host if request.client else "unknown"


def refuse_if_throttled(context: Ready, address: str) -> None:
    """429 for an address that sent too many bad credentials (tokens or event signatures) lately."""
    wait = context.failures.retry_after(address)
    if wait is not None:
        raise ApiProblem(
            429,
            f"Too many requests with bad credentials from {address}: {context.failures.limit} within "
            f"{context.failures.window_seconds:g} s. Wait {wait} s, then send a valid token or signature.",
            kind="too-many-bad-tokens",
            headers={"Retry-After": str(wait)},
        )


def require(*roles: Role) -> Any:
    """The dependency on a caller whose role is one of `roles`, for `Annotated[Operator, require(...)]`.

    It is FastAPI's `Security` marker (typed `Any` there): the roles become the route's scopes, in the OpenAPI
    document and in the `SecurityScopes` that `authorised_caller` checks.
    """
    return Security(authorised_caller, scopes=[role.value for role in roles])


Reader = Annotated[Operator, require(Role.VIEWER, Role.OPERATOR, Role.ADMINISTRATOR)]
"""Whoever may read cases, runs and the report."""
DecidingOperator = Annotated[Operator, require(Role.OPERATOR)]
"""An operator deciding a case (the workflow then checks their groups)."""
EventSource = Annotated[Operator, require(Role.SOURCE, Role.ADMINISTRATOR)]
"""A system (or an administrator) sending an event."""


def _either(roles: list[Role]) -> str:
    """'operator', 'source or administrator', 'viewer, operator or administrator'."""
    names = [role.value for role in roles]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
