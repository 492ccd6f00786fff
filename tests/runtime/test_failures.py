"""Failure paths: a payload that bypassed the edge, and a delivery into a source of truth, end the run as failed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from examples.restaurant import RestaurantApp
from handoff.activities.delivery import DeliveryActivities
from handoff.activities.ledger.database import create_schema, make_engine
from handoff.activities.ledger.tables import RunRow
from handoff.schemas.activities import DeliveryRequest, SyncedField
from handoff.schemas.runs import HandoffInput, Stage
from handoff.workers.testkit import HandoffKit
from tests.runtime import payloads


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
        with pytest.raises(ApplicationError) as refused:
            await ActivityEnvironment().run(delivery.deliver, request)
    finally:
        ledger.dispose()

    assert ("DeliveryRefused", True) == (refused.value.type, refused.value.non_retryable)
    assert "reservation.party_size into 'booking'" in str(refused.value)
    assert restaurant.systems.adapter("booking").read("reservation-to-pos/R-1") is None
