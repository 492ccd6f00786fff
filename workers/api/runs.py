"""Runs and the report over HTTP, for any reader's token.

A run is read the way the CLI reads it (`handoff.workers.run_detail`), then shown as the reader may see it
(`handoff.workers.masking`): personal fields masked unless they are an operator of a group that owns one of its
cases (a run without a case: of its contract's exception chain), and a purged run without its payloads even while
Temporal still holds them, with `Handoff-Purged-At` saying when it was purged.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Query, Response

from handoff.activities.ledger.purge import purged_on
from handoff.activities.ledger.reads import recent_runs
from handoff.activities.ledger.report import build_report
from handoff.schemas.api import ErrorBody, RunDetail, RunSummary
from handoff.schemas.report import Report
from handoff.schemas.runs import Stage
from handoff.workers.api.auth import AUTH_RESPONSES, Reader
from handoff.workers.api.cases import PURGED_HEADER, PURGED_RESPONSE
from handoff.workers.api.context import Ready, api_context
from handoff.workers.api.errors import ApiProblem
from handoff.workers.masking import PersonalData, shown_run
from handoff.workers.run_detail import run_detail

log = structlog.get_logger(__name__)

router = APIRouter(tags=["runs"], responses=AUTH_RESPONSES)


@router.get("/runs", response_model=list[RunSummary], summary="Recent runs, newest first")
async def list_runs(
    reader: Reader,
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
    description=(
        "Personal fields are masked (`•••`) unless you are an operator of a group that owns one of the run's cases "
        "(for a run without a case: a group of its contract's exception chain)."
    ),
    responses={
        **PURGED_RESPONSE,
        404: {"model": ErrorBody, "description": "Neither Temporal nor the ledger knows this run."},
    },
)
async def read_run(
    workflow_id: str, reader: Reader, context: Annotated[Ready, Depends(api_context)], response: Response
) -> RunDetail:
    detail = await run_detail(context.client, context.ledger, workflow_id)
    if detail is None:
        raise ApiProblem(404, f"No run {workflow_id!r}: neither Temporal nor the ledger knows it.", kind="unknown-run")

    def read() -> tuple[datetime | None, PersonalData]:
        return purged_on(context.ledger, workflow_id), PersonalData(context.app.every_version())

    purged_at, personal = await asyncio.to_thread(read)
    if purged_at is not None:
        response.headers[PURGED_HEADER] = purged_at.isoformat()
    return shown_run(detail, caller=reader, personal=personal, purged_at=purged_at)


@router.get("/report", response_model=Report, tags=["report"], summary="Each handoff's figures against its gain")
async def read_report(
    reader: Reader,
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
