"""Compensation: undo a run's write to one target system, through the adapter method its contract names.

An ordered delivery (`Sync(ordered=True)`) that a later target refuses undoes the writes made before it, last first;
the workflow calls this activity once per write (`workflows/compensation.py`). The adapter's undo is idempotent (the
protocol in `adapter.py` asks it to be), so an activity retried after a crash, even one that crashed after the undo,
undoes nothing twice; the ledger marks the delivery undone, so a retry that finds it marked does not call the adapter
at all.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from sqlalchemy import Engine
from temporalio import activity

from handoff.activities.delivery import DeliveryTargets
from handoff.activities.ledger.writes import delivery_undone, mark_delivery_undone
from handoff.activities.user_code import UnknownName, call
from handoff.schemas.activities import UNDO_DELIVERY, UndoRequest, UndoResult

log = structlog.get_logger(__name__)


class CompensationActivities:
    """Undoes writes of ordered deliveries and marks them undone in the ledger."""

    def __init__(self, systems: DeliveryTargets, ledger: Engine, *, pause_after_undo: float = 0.0) -> None:
        self._systems = systems
        self._ledger = ledger
        # A pause between the undo and its acknowledgement: tests use it to kill a worker at the worst moment.
        self._pause_after_undo = pause_after_undo

    @activity.defn(name=UNDO_DELIVERY)
    async def undo_delivery(self, request: UndoRequest) -> UndoResult:
        """Call the adapter's undo method with the write's record key, then mark the delivery undone.

        An adapter without that method (the readiness gate stops such a contract; an adapter changed under a running
        worker may still get here) is answered, not raised: the write stays and the case says why. Anything the
        method raises is retried, as the run's policy bounds it.
        """
        bound = dict(handoff=request.handoff, workflow_id=request.workflow_id, system=request.system)
        if await asyncio.to_thread(delivery_undone, self._ledger, request.workflow_id, request.system):
            log.info("delivery.undo_found_done", **bound)
            return UndoResult(undone=True)
        try:
            adapter = self._systems.adapter(request.system)
        except UnknownName as error:
            return UndoResult(undone=False, problem=str(error))
        undo = getattr(adapter, request.undo, None)
        if not callable(undo):
            problem = f"the adapter of {request.system!r} has no method {request.undo}(record_key)"
            log.warning("delivery.undo_missing", problem=problem, **bound)
            return UndoResult(undone=False, problem=problem)
        activity.heartbeat("undoing")
        await call(undo, request.record_key)
        log.info("delivery.undone", attempt=activity.info().attempt, **bound)
        await self._pause()
        await asyncio.to_thread(
            mark_delivery_undone, self._ledger, request.workflow_id, request.system, datetime.now(UTC)
        )
        return UndoResult(undone=True)

    async def _pause(self) -> None:
        remaining = self._pause_after_undo
        while remaining > 0:
            activity.heartbeat("undone, acknowledging")
            await asyncio.sleep(min(remaining, 0.5))
            remaining -= 0.5
