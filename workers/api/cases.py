"""Cases over HTTP: list the open ones, read one in full (any reader), and decide one (an operator's token).

A case reads in full for an operator of the group that owns it now; for every other reader its personal fields are
masked (`handoff.workers.masking`). A case of a purged run answers with `Handoff-Purged-At`: its payload is empty
because it was purged then, not because the event carried nothing.

A decision goes to the case's run as a Temporal Update, attested with the decision key: the workflow is the one
judge (who sent it, the operator's groups in the ledger, owner group, allowed decisions, decided once), and each of
its refusals maps to its own status code. A refused decision changes nothing but the case's history of refused
attempts, in the run and in the ledger. One rule is the edge's, before anything is sent: a case another operator
of the group holds is theirs to decide (409 `held-by-another`, naming them; `activities.ledger.case_history`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Response

from handoff.activities.ledger.case_history import CaseActionRefused, check_claim_for_decision
from handoff.activities.ledger.purge import purged_on
from handoff.activities.ledger.reads import case_detail, open_cases
from handoff.schemas.api import CaseDetail, CaseSummary, DecisionBody, ErrorBody
from handoff.schemas.cases import DecisionRequest, DecisionResult, RefusalKind
from handoff.workers.api.auth import AUTH_RESPONSES, DecidingOperator, Reader
from handoff.workers.api.context import Ready, api_context
from handoff.workers.api.errors import TEMPORAL_REFUSED, ApiProblem
from handoff.workers.decisions import DecisionRefused, decide, decision_key, workflow_of_case
from handoff.workers.masking import PersonalData, shown_case

log = structlog.get_logger(__name__)

router = APIRouter(tags=["cases"], responses=AUTH_RESPONSES)

REFUSAL_STATUS = {
    RefusalKind.UNKNOWN_CASE: 404,
    RefusalKind.NOT_OWNER: 403,
    RefusalKind.UNAUTHORISED: 403,
    RefusalKind.ALREADY_DECIDED: 409,
    RefusalKind.NOT_ALLOWED: 422,
    RefusalKind.INVALID_CORRECTION: 422,
    RefusalKind.SAME_APPROVER: 409,
    RefusalKind.DISAGREES: 409,
}
"""The HTTP status of each reason the workflow gives for refusing a decision."""

PURGED_HEADER = "Handoff-Purged-At"
"""Set on the read of a case or run whose payload snapshots `handoff purge` removed: when (ISO 8601, UTC)."""
PURGED_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            PURGED_HEADER: {
                "description": "Only for a purged run: when `handoff purge` removed its payloads (ISO 8601, UTC).",
                "schema": {"type": "string", "format": "date-time"},
            }
        }
    }
}


@router.get("/cases", response_model=list[CaseSummary], summary="Open cases, most urgent first")
async def list_open_cases(
    reader: Reader,
    context: Annotated[Ready, Depends(api_context)],
    group: Annotated[str | None, Query(description="Only cases this operator group owns now.")] = None,
    handoff: Annotated[str | None, Query(description="Only cases of this handoff.")] = None,
) -> list[CaseSummary]:
    return await asyncio.to_thread(open_cases, context.ledger, now=datetime.now(UTC), group=group, handoff=handoff)


@router.get(
    "/cases/{case_id}",
    response_model=CaseDetail,
    summary="One case: violations, payload, escalations, decision, refused attempts, holder, history",
    description="Personal fields are masked (`•••`) unless you are an operator of the group that owns the case now.",
    responses={**PURGED_RESPONSE, 404: {"model": ErrorBody, "description": "No such case."}},
)
async def read_case(
    case_id: str, reader: Reader, context: Annotated[Ready, Depends(api_context)], response: Response
) -> CaseDetail:
    def read() -> tuple[CaseDetail | None, datetime | None, PersonalData]:
        detail = case_detail(context.ledger, case_id, now=datetime.now(UTC))
        purged_at = purged_on(context.ledger, detail.workflow_id) if detail else None
        return detail, purged_at, PersonalData(context.app.every_version())

    detail, purged_at, personal = await asyncio.to_thread(read)
    if detail is None:
        raise ApiProblem(404, f"No case {case_id!r} in the ledger.", kind=RefusalKind.UNKNOWN_CASE.value)
    if purged_at is not None:
        response.headers[PURGED_HEADER] = purged_at.isoformat()
    return shown_case(detail, caller=reader, personal=personal)


@router.post(
    "/cases/{case_id}/decision",
    response_model=DecisionResult,
    summary="Decide a case as the operator whose token this is",
    responses={
        403: {
            "model": ErrorBody,
            "description": "Not an operator's token, or the operator is not in the group that owns the case now.",
        },
        404: {"model": ErrorBody, "description": "No such case."},
        409: {
            "model": ErrorBody,
            "description": "The case was already decided, or another operator of the group holds it "
            "(`held-by-another`, naming them): only the holder decides a held case.",
        },
        422: {
            "model": ErrorBody,
            "description": "A decision the contract does not allow, a bad correction, a bad body.",
        },
        **TEMPORAL_REFUSED,
    },
)
async def decide_case(
    case_id: str,
    body: DecisionBody,
    operator: DecidingOperator,
    context: Annotated[Ready, Depends(api_context)],
) -> DecisionResult:
    """Send the decision to the case's run; 200 once the workflow applied it and the ledger holds it."""
    try:
        await asyncio.to_thread(check_claim_for_decision, context.ledger, case_id, operator)
        workflow_id = await asyncio.to_thread(workflow_of_case, context.ledger, case_id)
        request = DecisionRequest(
            case_id=case_id,
            decision=body.decision,
            operator=operator.name,
            operator_groups=operator.groups,
            reason=body.reason,
            patch=body.patch,
        )
        result = await decide(context.client, workflow_id, request, key=decision_key(context.settings))
    except DecisionRefused as refused:
        kind = refused.refusal.kind
        log.info("api.decision_refused", case_id=case_id, operator=operator.name, refusal=kind.value)
        raise ApiProblem(REFUSAL_STATUS[kind], refused.refusal.message, kind=kind.value) from None
    except CaseActionRefused as held:
        log.info("api.decision_held", case_id=case_id, operator=operator.name)
        raise ApiProblem(409, held.message, kind=held.kind.value) from None
    log.info("api.decision", case_id=case_id, operator=operator.name, decision=body.decision.value)
    return result
