"""Good data flows: each of the restaurant's handoffs delivers exactly its synced fields, once, and the ledger says so."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from examples.restaurant import RestaurantApp
from handoff.activities.ledger.tables import DeliveryRow, RunRow
from handoff.schemas.runs import Stage
from handoff.workers.testkit import HandoffKit
from tests.runtime import payloads


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("reservation.confirmed", payloads.reservation),
        ("deal.won", payloads.deal),
        ("order.placed", payloads.order),
    ],
)
async def test_good_event_is_delivered_with_exactly_the_synced_fields(
    kit: HandoffKit, restaurant: RestaurantApp, event: str, payload: Any
) -> None:
    """A valid event ends delivered; each target is sent exactly its synced fields, none of the local ones."""
    body = payload()
    accepted = await kit.send(event, body)
    result = await kit.result(accepted.workflow_id)

    contract = restaurant.catalog.for_event(event)
    assert contract.sync is not None
    assert Stage.DELIVERED == result.stage
    assert [] == result.cases
    sent = {delivery.system: delivery.fields for delivery in result.deliveries}
    assert sorted(t.system for t in contract.sync.targets) == sorted(sent)
    for target in contract.sync.targets:
        synced = {target.target_name(path) for path in target.fields}
        kept_local = {target.target_name(path) for path in contract.sync.local}
        assert (synced, set()) == (set(sent[target.system]), kept_local & set(sent[target.system]))
        row = restaurant.systems.adapter(target.system).read(accepted.workflow_id)
        assert row is not None
        written = {name for name in row if name not in ("record_key", "written_at")}
        expected = {target.target_name(path) for path in target.fields if _value(body, path) not in (None, "", [])}
        assert expected == written
    with Session(kit.ledger) as session:
        run = session.get(RunRow, accepted.workflow_id)
        deliveries = session.exec(select(DeliveryRow).where(DeliveryRow.workflow_id == accepted.workflow_id)).all()
    assert run is not None
    assert (Stage.DELIVERED.value, contract.content_hash(), contract.version) == (
        run.stage,
        run.contract_hash,
        run.contract_version,
    )
    assert run.finished_at is not None
    assert sent == {d.system: d.fields for d in deliveries}


def _value(payload: dict[str, Any], path: str) -> Any:
    entity, field = path.split(".", 1)
    return payload[entity].get(field)
