"""Who is calling: a bearer token resolved to an operator through the ledger (which holds only token hashes).

Only deciding needs an operator; the workflow then checks the operator's groups against the case's owner. The
token is the operator's identity, so a missing or unknown token is a 401 that says how to get one.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from handoff.activities.ledger.operators import operator_for_token
from handoff.schemas.operators import Operator
from handoff.workers.api.context import Ready, api_context
from handoff.workers.api.errors import ApiProblem

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="OperatorToken",
    description="An operator's API token, printed once by `handoff operators add`.",
)


async def current_operator(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    context: Annotated[Ready, Depends(api_context)],
) -> Operator:
    """The operator whose token came with the request; 401 (with `WWW-Authenticate`) when there is none."""
    if credentials is None:
        raise ApiProblem(
            401,
            "Deciding needs an operator's API token: send `Authorization: Bearer <token>` "
            "(an administrator creates one with `handoff operators add`).",
            kind="unauthenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    operator = await asyncio.to_thread(operator_for_token, context.ledger, credentials.credentials)
    if operator is None:
        raise ApiProblem(
            401,
            "The API token is not valid: it matches no operator. Ask an administrator for a new one.",
            kind="invalid-token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return operator
