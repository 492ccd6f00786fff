"""The ledger's activities: thin async wrappers that run the blocking writes in a thread."""

from __future__ import annotations

import asyncio

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

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @activity.defn(name=RECORD_STAGE_CHANGE)
    async def record_stage_change(self, change: StageChange) -> bool:
        return await asyncio.to_thread(writes.record_stage_change, self._engine, change)

    @activity.defn(name=RECORD_ESCALATION)
    async def record_escalation(self, record: EscalationRecord) -> bool:
        return await asyncio.to_thread(writes.record_escalation, self._engine, record)

    @activity.defn(name=RECORD_REFUSAL)
    async def record_refusal(self, record: RefusalRecord) -> bool:
        return await asyncio.to_thread(writes.record_refusal, self._engine, record)

    @activity.defn(name=RECORD_FIRST_APPROVAL)
    async def record_first_approval(self, record: FirstApprovalRecord) -> bool:
        return await asyncio.to_thread(writes.record_first_approval, self._engine, record)
