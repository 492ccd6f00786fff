"""`GET /healthz`: can this API reach the ledger and Temporal? 200 when both answer, 503 saying which does not.

Load balancers and `docker compose` health checks call it; it changes nothing.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from handoff.schemas.api import HealthStatus
from handoff.workers.api.context import ApiContext

router = APIRouter(tags=["health"])

CHECK_TIMEOUT = timedelta(seconds=3)


@router.get(
    "/healthz",
    response_model=HealthStatus,
    summary="Whether the ledger and Temporal answer",
    responses={503: {"model": HealthStatus, "description": "The ledger or Temporal does not answer."}},
)
async def health(request: Request) -> JSONResponse:
    context: ApiContext = request.app.state.context
    ledger, temporal = await asyncio.gather(_ledger_health(context.ledger), _temporal_health(context))
    healthy = ledger == "ok" and temporal == "ok"
    status = HealthStatus(status="ok" if healthy else "unavailable", ledger=ledger, temporal=temporal)
    return JSONResponse(status.model_dump(mode="json"), status_code=200 if healthy else 503)


async def _ledger_health(ledger: Engine | None) -> str:
    if ledger is None:
        return "not opened"
    try:
        await asyncio.wait_for(asyncio.to_thread(_select_one, ledger), CHECK_TIMEOUT.total_seconds())
    except Exception as error:  # any failure is the answer: the check reports it rather than raising
        return f"unreachable: {type(error).__name__}: {error}"
    return "ok"


def _select_one(ledger: Engine) -> None:
    with ledger.connect() as connection:
        connection.execute(text("SELECT 1"))


async def _temporal_health(context: ApiContext) -> str:
    if context.client is None:
        return "not connected"
    try:
        serving = await context.client.service_client.check_health(timeout=CHECK_TIMEOUT)
    except Exception as error:  # any failure is the answer: the check reports it rather than raising
        return f"unreachable: {type(error).__name__}: {error}"
    return "ok" if serving else "not serving"
