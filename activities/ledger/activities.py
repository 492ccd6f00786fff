"""The ledger's activities: thin async wrappers that run the blocking writes in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from sqlalchemy import Engine
from temporalio import activity

from handoff.activities.ledger import writes
from handoff.schemas.activities import (
    RECORD_ESCALATION,
    RECORD_FIRST_APPROVAL,
    RECORD_REFUSAL,
    RECORD_STAGE_CHANGE,
    EscalationRecord,
    FirstApprovalRecord,
    RefusalRecord,
    StageChange,
)

log = structlog.get_logger(__name__)


class LedgerActivities:
    """Writes each stage change, escalation, first approval and refused decision of a run to the ledger, once."""

    def __init__(self, engine: Engine, *, notice_queued: Callable[[], None] | None = None) -> None:
        """`notice_queued`: called when a write queued a notice in the outbox (the outbox sender's `wake`)."""
        self._engine = engine
        self._notice_queued = notice_queued

    @activity.defn(name=RECORD_STAGE_CHANGE)
    async def record_stage_change(self, change: StageChange) -> bool:
        recorded = await asyncio.to_thread(writes.record_stage_change, self._engine, change)
        if change.notice is not None:
            self._wake_outbox()
        return recorded

    @activity.defn(name=RECORD_ESCALATION)
    async def record_escalation(self, record: EscalationRecord) -> bool:
        recorded = await asyncio.to_thread(writes.record_escalation, self._engine, record)
        if record.notice is not None:
            self._wake_outbox()
        return recorded

    def _wake_outbox(self) -> None:
        if self._notice_queued is not None:
            self._notice_queued()

    @activity.defn(name=RECORD_REFUSAL)
    async def record_refusal(self, record: RefusalRecord) -> bool:
        return await asyncio.to_thread(writes.record_refusal, self._engine, record)

    @activity.defn(name=RECORD_FIRST_APPROVAL)
    async def record_first_approval(self, record: FirstApprovalRecord) -> bool:
        return await asyncio.to_thread(writes.record_first_approval, self._engine, record)
