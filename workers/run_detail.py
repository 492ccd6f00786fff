"""The one way both edges (API and CLI) read a run: live from Temporal, else from the ledger.

Temporal is the source of truth for a run's live state, so the workflow's `status` query comes first; a run that
Temporal no longer has (past retention) or cannot answer for (no worker to replay it) is read from the ledger.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from sqlalchemy import Engine
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError

from handoff.activities.ledger.reads import run_summary, status_from_ledger
from handoff.schemas.api import RunDetail
from handoff.schemas.runs import HandoffStatus

log = structlog.get_logger(__name__)

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
