"""Working a case together over HTTP: claim it, release it, hand it on, comment on it, read its history; and decide
several cases of one handoff at once.

The rules are the ledger's (`activities.ledger.case_history`): only an operator of the group that owns the case now
acts on it; a held case is its holder's (a claim by another, or a decision by another, is a 409 naming them); a
decided case holds nobody. Each refusal's `kind` maps to its status below.

A bulk decision (`POST /cases/decisions`) is several ordinary decisions: each case goes to its run as its own
Temporal Update, through the same path as `POST /cases/{id}/decision`, so each gets its own refusal check and its own
audit row (decision or refused attempt). The answer is 200 whenever the request was well formed, with each case's
outcome in the order named: a client reads the outcomes, as it would read a list, rather than a status that cannot
say which cases went through (207 Multi-Status is WebDAV's, and few HTTP clients read it). A request that cannot be
sent as asked (no case, more than 100, a case named twice, a correction, cases of several handoffs) is a 422, and
nothing is decided.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Depends

from handoff.activities.ledger.case_history import (
    BulkDecisionProblem,
    CaseActionRefused,
    case_history,
    claim_case,
    comment_on_case,
    plan_decisions,
    reassign_case,
    release_case,
)
from handoff.schemas.api import (
    MAX_BULK_CASES,
    BulkDecisionBody,
    BulkDecisionResult,
    CommentBody,
    ErrorBody,
    ReassignBody,
)
from handoff.schemas.case_history import CaseActionRefusalKind, CaseClaim, CaseEvent
from handoff.workers.api.auth import AUTH_RESPONSES, DecidingOperator, Reader
from handoff.workers.api.context import Ready, api_context
from handoff.workers.api.errors import ApiProblem
from handoff.workers.decisions import decide_planned, decision_key
from handoff.workers.edge import value_problems

log = structlog.get_logger(__name__)

T = TypeVar("T")

router = APIRouter(tags=["cases"], responses=AUTH_RESPONSES)

ACTION_STATUS = {
    CaseActionRefusalKind.UNKNOWN_CASE: 404,
    CaseActionRefusalKind.NOT_AN_OPERATOR: 403,
    CaseActionRefusalKind.NOT_OWNER: 403,
    CaseActionRefusalKind.ALREADY_DECIDED: 409,
    CaseActionRefusalKind.HELD_BY_ANOTHER: 409,
    CaseActionRefusalKind.BAD_ASSIGNEE: 422,
    CaseActionRefusalKind.INVALID_COMMENT: 422,
}
"""The HTTP status of each reason a claim, release, reassignment or comment is refused."""


NOT_OWNER: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "Not an operator's token, or not of the group owning the case."}
}
UNKNOWN_CASE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such case (`kind` unknown-case)."}
}


def _answers(conflict: str, *, invalid: str | None = None) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route acting on one case: 403, 404, 409 (`conflict`) and, if it takes a body, 422."""
    answers: dict[int | str, dict[str, Any]] = {
        **NOT_OWNER,
        **UNKNOWN_CASE,
        409: {"model": ErrorBody, "description": conflict},
    }
    if invalid is not None:
        answers[422] = {"model": ErrorBody, "description": invalid}
    return answers


@router.post(
    "/cases/{case_id}/claim",
    response_model=CaseClaim,
    summary="Claim a case: the group sees you hold it",
    responses=_answers(
        "Another operator holds the case (`held-by-another`, naming them), or it is decided (`already-decided`)."
    ),
)
async def claim(case_id: str, operator: DecidingOperator, context: Annotated[Ready, Depends(api_context)]) -> CaseClaim:
    """Take the case as the operator whose token this is; claiming a case you hold answers `changed: false`."""
    return await _act(claim_case, context.ledger, case_id, operator, at=datetime.now(UTC))


@router.post(
    "/cases/{case_id}/release",
    response_model=CaseClaim,
    summary="Release a case you hold",
    responses=_answers("Another operator holds the case (`held-by-another`), or it is decided (`already-decided`)."),
)
async def release(
    case_id: str, operator: DecidingOperator, context: Annotated[Ready, Depends(api_context)]
) -> CaseClaim:
    """Let the case go; releasing a case nobody holds answers `changed: false`."""
    return await _act(release_case, context.ledger, case_id, operator, at=datetime.now(UTC))


@router.post(
    "/cases/{case_id}/reassign",
    response_model=CaseClaim,
    summary="Hand a case to another operator of its group",
    responses=_answers(
        "Another operator holds the case (`held-by-another`), or it is decided (`already-decided`).",
        invalid="`to` is no operator of the group that owns the case (`bad-assignee`), or the body is invalid.",
    ),
)
async def reassign(
    case_id: str, body: ReassignBody, operator: DecidingOperator, context: Annotated[Ready, Depends(api_context)]
) -> CaseClaim:
    """Hand the case you hold (or that nobody holds) to `to`; to yourself, it is a claim."""
    return await _act(reassign_case, context.ledger, case_id, operator, body.to, at=datetime.now(UTC))


@router.post(
    "/cases/{case_id}/comments",
    response_model=CaseEvent,
    status_code=201,
    summary="Comment on a case",
    responses={
        **NOT_OWNER,
        **UNKNOWN_CASE,
        422: {"model": ErrorBody, "description": "Empty, longer than 2000 characters, or holding NUL."},
    },
)
async def comment(
    case_id: str, body: CommentBody, operator: DecidingOperator, context: Annotated[Ready, Depends(api_context)]
) -> CaseEvent:
    """Add a note to the case's history, open or decided; every operator of the group that owns it may."""
    return await _act(comment_on_case, context.ledger, case_id, operator, body.text, at=datetime.now(UTC))


@router.get(
    "/cases/{case_id}/history",
    response_model=list[CaseEvent],
    summary="A case's history, oldest first",
    responses=UNKNOWN_CASE,
)
async def history(case_id: str, reader: Reader, context: Annotated[Ready, Depends(api_context)]) -> list[CaseEvent]:
    """Opened, claims, comments, escalations, refused decisions and the decision, in time order."""
    return await _act(case_history, context.ledger, case_id)


@router.post(
    "/cases/decisions",
    response_model=BulkDecisionResult,
    summary="Decide several open cases of one handoff at once",
    description=(
        f"One decision (approve, reject or retry) and reason for 1 to {MAX_BULK_CASES} cases of one handoff. Each "
        "case is decided on its own, as `POST /cases/{case_id}/decision` decides it: its own refusal check and "
        "audit row. The answer is 200 once the request was well formed, whatever became of each case: read "
        "`outcomes` (decided, refused with its `kind`, or failed when Temporal did not answer)."
    ),
    responses={
        403: {"model": ErrorBody, "description": "Not an operator's token."},
        422: {
            "model": ErrorBody,
            "description": "No case, more than 100, a case named twice, a correction, a reason no run can carry, or "
            "cases of several handoffs (`mixed-handoffs`) or not of `handoff` (`wrong-handoff`): nothing decided.",
        },
    },
)
async def decide_cases(
    body: BulkDecisionBody, operator: DecidingOperator, context: Annotated[Ready, Depends(api_context)]
) -> BulkDecisionResult:
    """Send each case's decision to its run (a few at a time) and answer with every outcome."""
    problems = value_problems({"reason": body.reason})
    if problems:
        listed = "; ".join(f"{problem.field}: {problem.message}" for problem in problems)
        raise ApiProblem(422, f"The request is invalid: {listed}", kind="invalid-request", errors=problems)
    try:
        planned = await asyncio.to_thread(plan_decisions, context.ledger, body, operator)
    except BulkDecisionProblem as problem:
        raise ApiProblem(422, str(problem), kind=problem.kind) from None
    result = await decide_planned(context.client, planned, key=decision_key(context.settings))
    log.info(
        "api.bulk_decision",
        operator=operator.name,
        decision=body.decision.value,
        decided=result.decided,
        refused=result.refused,
        failed=result.failed,
    )
    return result


async def _act(action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a ledger act in a thread; its refusal as the API answers it."""
    try:
        return await asyncio.to_thread(action, *args, **kwargs)
    except CaseActionRefused as refused:
        raise ApiProblem(ACTION_STATUS[refused.kind], refused.message, kind=refused.kind.value) from None
