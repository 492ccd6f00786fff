"""Failure paths: a payload that bypassed the edge ends the run as failed; a delivery into a source of truth is refused;
user code that misbehaves is never retried into a second write, and never leaves a run stuck."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import ActivityEnvironment

from examples.restaurant import RestaurantApp
from handoff import Handoffs, Lookup
from handoff.activities.delivery import DeliveryActivities
from handoff.activities.ledger.database import create_schema, make_engine
from handoff.activities.ledger.tables import RunRow
from handoff.activities.user_code import UnknownName
from handoff.schemas.activities import DeliveryRequest, SyncedField
from handoff.schemas.runs import HandoffInput, Stage
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.runtime import payloads
from tests.workflows.sample_contracts import GROUPS, ready_contract


async def test_a_payload_that_bypassed_the_edge_fails_the_run_with_its_field_errors(kit: HandoffKit) -> None:
    """Started without the edge's check (e.g. `temporal workflow start`), a misfit payload fails cleanly, recorded."""
    body = payloads.reservation(reservation__party_size="many")
    workflow_id = f"reservation-to-pos/{body['reservation']['id']}"
    handle = await kit.client.start_workflow(
        "reservation-to-pos",
        HandoffInput(event="reservation.confirmed", payload=body, received_at=datetime.now(UTC)),
        id=workflow_id,
        task_queue=kit.settings.task_queue,
    )

    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()

    assert "reservation.party_size" in str(failed.value.cause)
    assert WorkflowExecutionStatus.FAILED == (await handle.describe()).status
    with Session(kit.ledger) as session:
        run = session.get(RunRow, workflow_id)
    assert run is not None and Stage.FAILED.value == run.stage
    assert run.failure is not None and "reservation.party_size" in run.failure


async def test_a_delivery_into_the_system_that_owns_the_entity_is_refused(
    restaurant: RestaurantApp, tmp_path: Path
) -> None:
    """The second line of defence behind the gate: writing booking's own reservation back into booking is refused."""
    ledger = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_schema(ledger)
    delivery = DeliveryActivities(restaurant, ledger)
    request = DeliveryRequest(
        workflow_id="reservation-to-pos/R-1",
        handoff="reservation-to-pos",
        system="booking",
        fields=[SyncedField(path="reservation.party_size", name="reservation_party_size", value=4)],
        source_of_truth={"reservation": "booking"},
    )

    try:
        result = await ActivityEnvironment().run(delivery.deliver, request)
    finally:
        ledger.dispose()

    assert result.delivery is None and result.refusal is not None
    assert ("DeliveryRefused", "booking") == (result.refusal.error, result.refusal.system)
    assert "reservation.party_size into 'booking'" in result.refusal.reason
    assert restaurant.systems.adapter("booking").read("reservation-to-pos/R-1") is None


# -- user code that misbehaves: never stuck, never retried into a second write. A look-up that fails fails the run;
#    an adapter that fails opens a case (the record waits for a fix and a retry) ---------------------------------


class _ForgetfulPos:
    """An adapter that writes, then forgets to say what it did (returns None)."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, record_key: str, fields: Mapping[str, Any]) -> None:
        self.writes += 1


def _booking_app(pos: object, lookup: Callable[[Any], Any]) -> Handoffs:
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(rules=(TABLE_LOOKUP,)),))
    app.source("bookings")
    app.system("pos", pos)  # type: ignore[arg-type]
    app.lookup("pos.table_exists")(lookup)
    return app


TABLE_LOOKUP = Lookup(check="pos.table_exists", field="booking.table", reason="The table must exist.")


def _booking() -> dict[str, Any]:
    return {"booking": {"id": f"B-{uuid.uuid4().hex[:8]}", "party_size": 2, "table": "T1"}, "guest": {"name": "Ada"}}


async def _failed_run(kit: HandoffKit) -> tuple[str, RunRow]:
    accepted = await kit.send("booking.confirmed", _booking())
    with pytest.raises(WorkflowFailureError) as failed:
        await kit.result(accepted.workflow_id)
    with Session(kit.ledger) as session:
        run = session.get(RunRow, accepted.workflow_id)
    assert run is not None
    return str(failed.value.cause), run


async def test_an_adapter_that_returns_nothing_opens_a_case_after_one_write(client: Client, tmp_path: Path) -> None:
    """The adapter wrote, then answered None: retrying would write again, so the run stops at once, in a case whose
    reason says what `write` must return; the event waits for the fixed adapter and a retry."""
    pos = _ForgetfulPos()
    async with running_handoffs(client, _booking_app(pos, lambda table: True), tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", _booking())
        case = await kit.open_case(accepted.workflow_id)

    [violation] = case.violations
    assert "returned None from write()" in violation.reason and "'pos'" in violation.reason
    assert 1 == pos.writes  # not retried into a second write


async def test_a_lookup_that_raises_fails_the_run_instead_of_leaving_it_validating(
    client: Client, tmp_path: Path
) -> None:
    def broken(table: Any) -> bool:
        raise UnknownName("no such thing")  # stands for the app's own unknown-name error: not retried

    async with running_handoffs(client, _booking_app(_ForgetfulPos(), broken), tmp_path) as kit:
        cause, run = await _failed_run(kit)

    assert "look-ups could not be run" in cause
    assert Stage.FAILED.value == run.stage
    assert run.failure is not None and "no such thing" in run.failure
