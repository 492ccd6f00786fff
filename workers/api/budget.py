"""The exception budget over HTTP: which handoffs are held, and an operator's resume or rejection of one.

`GET /budget` lists the active holds with the figures that tripped them and the runs waiting. `POST
/handoffs/{name}/resume` lets the held runs deliver; `POST /handoffs/{name}/reject-held` ends them rejected. Either
is for an operator of the handoff's owner group, or an administrator (403 `not-allowed` otherwise); with nothing
held it is a 409 `no-active-hold`. The ledger keeps who, when and why before any run is told, and each held run
is then signalled to ask the ledger again (`activities.budget.release_held_runs`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends

from handoff.activities.budget import release_held_runs
from handoff.activities.ledger.budget import HoldRefused, active_holds, decide_hold
from handoff.schemas.api import ErrorBody
from handoff.schemas.budget import Hold, HoldDecided, HoldDecisionBody, HoldState
from handoff.schemas.operators import Operator, Role
from handoff.workers.api.auth import AUTH_RESPONSES, Reader, require
from handoff.workers.api.context import Ready, api_context
from handoff.workers.api.errors import ApiProblem
from handoff.workers.edge import value_problems

log = structlog.get_logger(__name__)

router = APIRouter(tags=["budget"], responses=AUTH_RESPONSES)

HoldDecider = Annotated[Operator, require(Role.OPERATOR, Role.ADMINISTRATOR)]
"""An operator (of the handoff's owner group, checked against the hold) or an administrator."""

REFUSAL_STATUS = {"not-allowed": 403, "no-active-hold": 409}

DECISION_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "Not an operator of the handoff's owner group, nor an administrator."},
    409: {"model": ErrorBody, "description": "The handoff is not held (`no-active-hold`): nothing to decide."},
    422: {"model": ErrorBody, "description": "No reason, or one no run can carry."},
}


@router.get("/budget", response_model=list[Hold], summary="Handoffs held by their exception budget")
async def held(reader: Reader, context: Annotated[Ready, Depends(api_context)]) -> list[Hold]:
    """Every active hold, oldest first: the figures that tripped it and how many runs wait on it."""
    return await asyncio.to_thread(active_holds, context.ledger)


@router.post(
    "/handoffs/{name}/resume",
    response_model=HoldDecided,
    summary="Resume a held handoff: its held runs deliver",
    responses=DECISION_RESPONSES,
)
async def resume(
    name: str, body: HoldDecisionBody, operator: HoldDecider, context: Annotated[Ready, Depends(api_context)]
) -> HoldDecided:
    """Resume the handoff's hold as the token's operator; the budget counts afresh from now."""
    return await _decide(context, name, HoldState.RESUMED, body, operator)


@router.post(
    "/handoffs/{name}/reject-held",
    response_model=HoldDecided,
    summary="Reject the held runs of a handoff: they end rejected",
    responses=DECISION_RESPONSES,
)
async def reject_held(
    name: str, body: HoldDecisionBody, operator: HoldDecider, context: Annotated[Ready, Depends(api_context)]
) -> HoldDecided:
    """Reject the handoff's held runs as the token's operator, with the reason; the budget counts afresh from now."""
    return await _decide(context, name, HoldState.REJECTED, body, operator)


async def _decide(
    context: Ready, handoff: str, state: HoldState, body: HoldDecisionBody, operator: Operator
) -> HoldDecided:
    problems = value_problems({"reason": body.reason})
    if problems:
        listed = "; ".join(f"{problem.field}: {problem.message}" for problem in problems)
        raise ApiProblem(422, f"The request is invalid: {listed}", kind="invalid-request", errors=problems)
    try:
        hold = await asyncio.to_thread(
            decide_hold, context.ledger, handoff, state, operator, body.reason, at=datetime.now(UTC)
        )
    except HoldRefused as refused:
        raise ApiProblem(REFUSAL_STATUS[refused.kind], refused.message, kind=refused.kind) from None
    signalled = await release_held_runs(context.client, context.ledger, handoff)
    log.info("api.hold_decided", handoff=handoff, state=state.value, operator=operator.name, told=len(signalled))
    return HoldDecided(hold=hold, signalled=signalled)
