"""Runs and the report over HTTP, and the one way both edges read a run: live from Temporal, else from the ledger.

Temporal is the source of truth for a run's live state, so `status` asks the workflow first; a run that Temporal
no longer has (past retention) or cannot answer for (no worker to replay it) is read from the ledger instead.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Query
from sqlalchemy import Engine
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from handoff.activities.ledger.reads import recent_runs, run_summary, status_from_ledger
from handoff.activities.ledger.report import build_report
from handoff.schemas.api import ErrorBody, RunDetail, RunSummary
from handoff.schemas.report import Report
from handoff.schemas.runs import HandoffStatus, Stage
from handoff.workers.api.context import Ready, api_context
from handoff.workers.api.errors import ApiProblem

log = structlog.get_logger(__name__)

router = APIRouter(tags=["runs"])

LIVE_QUERY_TIMEOUT = timedelta(seconds=5)
"""How long to wait for the workflow's answer before reading the ledger (a run needs a worker to answer)."""


async def run_detail(client: Client, ledger: Engine, workflow_id: str) -> RunDetail | None:
    """The run live from Temporal, else from the ledger; None when neither knows it."""
    summary = await asyncio.to_thread(run_summary, ledger, workflow_id)
    try:
        status = await client.get_workflow_handle(workflow_id).query(
            "status", result_type=HandoffStatus, rpc_timeout=LIVE_QUERY_TIMEOUT
        )
        return RunDetail(source="temporal", status=status, run=summary)
    except (RPCError, WorkflowQueryFailedError) as error:
        log.info("api.status_from_ledger", workflow_id=workflow_id, reason=str(error))
    recorded = await asyncio.to_thread(status_from_ledger, ledger, workflow_id)
    return None if recorded is None else RunDetail(source="ledger", status=recorded, run=summary)


@router.get("/runs", response_model=list[RunSummary], summary="Recent runs, newest first")
async def list_runs(
    context: Annotated[Ready, Depends(api_context)],
    handoff: Annotated[str | None, Query(description="Only runs of this handoff.")] = None,
    stage: Annotated[Stage | None, Query(description="Only runs in this stage.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many runs.")] = 50,
) -> list[RunSummary]:
    return await asyncio.to_thread(recent_runs, context.ledger, handoff=handoff, stage=stage, limit=limit)


@router.get(
    "/runs/{workflow_id:path}",
    response_model=RunDetail,
    summary="One run: live status from Temporal, or the ledger's record once Temporal has forgotten it",
    responses={404: {"model": ErrorBody, "description": "Neither Temporal nor the ledger knows this run."}},
)
async def read_run(workflow_id: str, context: Annotated[Ready, Depends(api_context)]) -> RunDetail:
    detail = await run_detail(context.client, context.ledger, workflow_id)
    if detail is None:
        raise ApiProblem(404, f"No run {workflow_id!r}: neither Temporal nor the ledger knows it.", kind="unknown-run")
    return detail


@router.get("/report", response_model=Report, tags=["report"], summary="Each handoff's figures against its gain")
async def read_report(
    context: Annotated[Ready, Depends(api_context)],
    by_version: Annotated[
        bool, Query(description="Also each handoff's figures per contract version (`versions`), oldest first.")
    ] = False,
) -> Report:
    def report() -> Report:
        # Every version (the lock file's too), so that each version line is held to its own contract's gain.
        contracts = context.app.every_version() if by_version else context.app.catalog.contracts
        return build_report(context.ledger, contracts, by_version=by_version)

    return await asyncio.to_thread(report)
