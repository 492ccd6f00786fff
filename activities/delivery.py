"""Delivery: write a run's synced fields to one target system, exactly once, through the system's adapter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from handoff.activities.adapter import InvalidFieldValue, SystemAdapter, UnknownField, WriteOutcome
from handoff.activities.ledger.writes import record_delivery
from handoff.activities.user_code import call
from handoff.schemas.activities import DELIVER, DeliveryRequest, DeliveryResult
from handoff.schemas.runs import Delivery

log = structlog.get_logger(__name__)


class DeliveryTargets(Protocol):
    """What delivery needs from the app: an adapter by system name, and its transforms."""

    def adapter(self, system: str) -> SystemAdapter: ...

    async def transformed(self, name: str, value: Any) -> Any: ...


class DeliveryActivities:
    """Writes synced fields to target systems and records each delivery in the ledger.

    The write is keyed by the run's workflow id, so an activity retried after a crash (even one that crashed after
    writing) finds its row and writes nothing twice.
    """

    def __init__(self, systems: DeliveryTargets, ledger: Engine, *, pause_after_write: float = 0.0) -> None:
        self._systems = systems
        self._ledger = ledger
        # A pause between the write and its acknowledgement: tests use it to kill a worker at the worst moment.
        self._pause_after_write = pause_after_write

    @activity.defn(name=DELIVER)
    async def deliver(self, request: DeliveryRequest) -> DeliveryResult:
        refused = _writes_into_owner(request)
        if refused:
            raise ApplicationError(refused, type="DeliveryRefused", non_retryable=True)
        fields = {
            field.name: field.value
            if field.transform is None
            else await self._systems.transformed(field.transform, field.value)
            for field in request.fields
        }
        adapter = self._systems.adapter(request.system)
        activity.heartbeat("writing")
        try:
            answer = await call(adapter.write, request.workflow_id, fields)
        except (UnknownField, InvalidFieldValue) as error:
            # The target system refuses this shape: retrying cannot fix it, the contract's sync must change.
            raise ApplicationError(str(error), type=type(error).__name__, non_retryable=True) from error
        outcome = _outcome(request.system, answer)
        log.info(
            "delivery.written",
            handoff=request.handoff,
            workflow_id=request.workflow_id,
            system=request.system,
            outcome=outcome.value,
            attempt=activity.info().attempt,
        )
        await self._pause()
        delivery = Delivery(
            system=request.system, record_key=request.workflow_id, fields=fields, delivered_at=datetime.now(UTC)
        )
        recorded = await asyncio.to_thread(
            record_delivery, self._ledger, request.workflow_id, request.handoff, delivery
        )
        return DeliveryResult(delivery=recorded, already_written=outcome is WriteOutcome.ALREADY_WRITTEN)

    async def _pause(self) -> None:
        remaining = self._pause_after_write
        while remaining > 0:
            activity.heartbeat("written, acknowledging")
            await asyncio.sleep(min(remaining, 0.5))
            remaining -= 0.5


def _outcome(system: str, answer: object) -> WriteOutcome:
    """What the adapter says it did. Anything else is a bug in the adapter, found after it wrote: retrying would
    write again, so the run fails and says what `write` must return."""
    try:
        return WriteOutcome(answer)  # type: ignore[arg-type]  # checked here, at run time
    except ValueError:
        raise ApplicationError(
            f"The adapter of {system!r} returned {answer!r} from write(); it must return WriteOutcome.WRITTEN or "
            "WriteOutcome.ALREADY_WRITTEN (the record was written before under this key). Fix the adapter.",
            type="BadAdapter",
            non_retryable=True,
        ) from None


def _writes_into_owner(request: DeliveryRequest) -> str | None:
    """The second line of defence behind the readiness gate: never overwrite a source of truth."""
    owned = sorted(
        field.path
        for field in request.fields
        if request.source_of_truth.get(field.path.split(".", 1)[0]) == request.system
    )
    if not owned:
        return None
    return (
        f"Refused: {request.handoff} would write {', '.join(owned)} into {request.system!r}, "
        f"the system that owns that entity (its source of truth)."
    )
