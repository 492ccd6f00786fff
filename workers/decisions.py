"""Deciding a case from the edge (CLI, API, test kit): find the case's run, send the decision as an Update.

The workflow's update validator is the one judge of a decision (owner group, allowed decisions, already decided):
a refused decision comes back as `DecisionRefused` with the workflow's own words and its `RefusalKind`.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from handoff.activities.ledger.tables import CaseRow
from handoff.schemas.cases import DecisionRequest, DecisionResult, Refusal, RefusalKind


class DecisionRefused(Exception):
    """The workflow refused the decision; nothing changed. `refusal.kind` says why, `refusal.message` in words."""

    def __init__(self, refusal: Refusal) -> None:
        self.refusal = refusal
        super().__init__(refusal.message)


def workflow_of_case(ledger: Engine, case_id: str) -> str:
    """The workflow id of the run a case belongs to, from the ledger; `DecisionRefused(UNKNOWN_CASE)` if none."""
    with Session(ledger) as session:
        case = session.get(CaseRow, case_id)
    if case is None:
        raise DecisionRefused(Refusal(kind=RefusalKind.UNKNOWN_CASE, message=f"No case {case_id!r} in the ledger."))
    return case.workflow_id


async def decide(client: Client, workflow_id: str, request: DecisionRequest) -> DecisionResult:
    """Send the decision to the run as an Update; returns once the workflow applied it and the ledger holds it."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        result: DecisionResult = await handle.execute_update("decide", request, result_type=DecisionResult)
        return result
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            # The run has ended (its cases were decided) or never existed.
            raise DecisionRefused(
                Refusal(
                    kind=RefusalKind.ALREADY_DECIDED,
                    message=f"Run {workflow_id} has ended or does not exist; case {request.case_id} cannot be "
                    f"decided any more ({error.message}).",
                )
            ) from None
        raise
    except WorkflowUpdateFailedError as failed:
        cause = failed.cause
        if isinstance(cause, ApplicationError) and cause.type and cause.type in RefusalKind._value2member_map_:
            raise DecisionRefused(Refusal(kind=RefusalKind(cause.type), message=cause.message)) from None
        raise
