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
from handoff.activities.ledger.writes import record_delivery, record_stage_change
from handoff.activities.user_code import UnknownName, call
from handoff.schemas.activities import DELIVER, DeliveryRefusal, DeliveryRequest, DeliveryResult
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
        """Write the record, or answer the system's refusal: a refusal is data for an exception case, not a crash.

        Anything else the adapter raises (a timeout, a connection reset) is retried, as the run's policy bounds it.
        A stage change riding with the request (`delivering`, in new runs) is recorded first, whatever the answer.
        """
        if request.stage_change is not None:
            await asyncio.to_thread(record_stage_change, self._ledger, request.stage_change)
        refused = _writes_into_owner(request)
        if refused:
            return _refused(request, reason=refused, error="DeliveryRefused")
        fields = {
            field.name: field.value
            if field.transform is None
            else await self._systems.transformed(field.transform, field.value)
            for field in request.fields
        }
        try:
            adapter = self._systems.adapter(request.system)
        except UnknownName as error:
            return _refused(request, reason=str(error.args[0]), error="UnknownName")
        activity.heartbeat("writing")
        try:
            answer = await call(adapter.write, request.workflow_id, fields)
        except InvalidFieldValue as error:
            # The target cannot store this value: retrying cannot fix it, a person must correct it or reject the run.
            return _refused(request, reason=str(error), error="InvalidFieldValue", target_field=error.field)
        except UnknownField as error:
            return _refused(request, reason=str(error), error="UnknownField", target_field=error.fields[0])
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
        if request.finish is not None:  # this write ends the run: its last stage change rides with it
            finished = request.finish.model_copy(update={"at": datetime.now(UTC)})
            await asyncio.to_thread(record_stage_change, self._ledger, finished)
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


def _refused(request: DeliveryRequest, *, reason: str, error: str, target_field: str | None = None) -> DeliveryResult:
    """The system's refusal, with the payload path of the field it names (delivery knows each field's rename)."""
    path = next((field.path for field in request.fields if field.name == target_field), None)
    value = next((field.value for field in request.fields if field.name == target_field), None)
    log.warning(
        "delivery.refused",
        handoff=request.handoff,
        workflow_id=request.workflow_id,
        system=request.system,
        field=path,
        error=error,
        reason=reason,
    )
    return DeliveryResult(
        refusal=DeliveryRefusal(
            system=request.system, field=path, target_field=target_field, value=value, reason=reason, error=error
        )
    )


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
