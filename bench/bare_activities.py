"""The bare workflow's models, activities and worker: reservation-to-pos by hand, the baseline for the benchmarks.

Written the way temporalio/samples-python writes a workflow's companions (`activities.py` beside `workflows.py`):
one pydantic model per input and result, activities as methods of a class that receives its dependencies.

The activities do exactly the work Handoff's do, through the same code: the ledger write is
`activities.ledger.writes.record_stage_change` (same SQLite tables, same records), the look-up is the restaurant
systems' `pos.table_exists` (the function its app registers), the delivery is the POS adapter's `write` plus
`writes.record_delivery`.
So the comparison measures the engine, not the activities. This module is imported into the workflow sandbox
passed through (as Handoff's `schemas/` are), so its pydantic classes are built once, not once per run.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from examples.restaurant.reservation_to_pos import ReservationConfirmed
from examples.restaurant.systems import RestaurantSystems
from handoff.activities.ledger import writes
from handoff.schemas.activities import StageChange
from handoff.schemas.runs import Delivery, Stage
from handoff.workers.settings import Settings


class ReservationInput(BaseModel):
    """The workflow's input: the booking system's event, typed."""

    payload: ReservationConfirmed
    received_at: datetime
    sla_scale: float = 1.0


class ReservationResult(BaseModel):
    stage: Stage
    case_id: str | None = None
    delivered_at: datetime | None = None


class TableLookupInput(BaseModel):
    workflow_id: str
    table_number: str | None


class PosDeliveryInput(BaseModel):
    workflow_id: str
    fields: dict[str, Any]


class PosDeliveryResult(BaseModel):
    delivery: Delivery


class DecisionAccepted(BaseModel):
    """What the `decide` update returns once the ledger holds the decision."""

    case_id: str
    next_stage: Stage


class BareActivities:
    """The three activities of the bare reservation-to-pos, over the same ledger and restaurant systems as Handoff."""

    def __init__(self, ledger: Engine, systems: RestaurantSystems, *, handoff: str = "bare-reservation-to-pos") -> None:
        self._ledger = ledger
        self._handoff = handoff  # the name deliveries are recorded under (bench/best.py has its own)
        # The adapter and the look-up the restaurant's app registers with Handoff, called directly.
        self._pos = systems.adapter("pos")
        self._table_exists = systems.look_up("pos.table_exists")

    @activity.defn
    async def record_stage(self, change: StageChange) -> bool:
        """Write one stage change to the ledger (the same write as Handoff's `record_stage_change`)."""
        return await asyncio.to_thread(writes.record_stage_change, self._ledger, change)

    @activity.defn
    async def look_up_table(self, request: TableLookupInput) -> bool:
        """Whether the table exists on the POS floor plan."""
        return await asyncio.to_thread(self._table_exists, request.table_number)

    @activity.defn
    async def deliver_to_pos(self, request: PosDeliveryInput) -> PosDeliveryResult:
        """Open the table in the POS (idempotent by workflow id) and record the delivery in the ledger."""
        await asyncio.to_thread(self._pos.write, request.workflow_id, request.fields)
        delivery = Delivery(
            system="pos", record_key=request.workflow_id, fields=request.fields, delivered_at=datetime.now(UTC)
        )
        recorded = await asyncio.to_thread(
            writes.record_delivery, self._ledger, request.workflow_id, self._handoff, delivery
        )
        return PosDeliveryResult(delivery=recorded)


def build_bare_worker(
    client: Client, settings: Settings, *, ledger: Engine, systems: RestaurantSystems, task_queue: str | None = None
) -> Worker:
    """The bare worker, with the same concurrency, cache and shutdown settings as Handoff's `build_worker`."""
    from bare import ReservationToPos  # the workflow module imports this one: import it late

    acts = BareActivities(ledger, systems)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[ReservationToPos],
        activities=[acts.record_stage, acts.look_up_table, acts.deliver_to_pos],
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_cached_workflows=settings.max_cached_workflows,
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
    )
