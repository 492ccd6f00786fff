"""Good data flows: each catalog handoff delivers exactly its synced fields, once, and the ledger says so."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session, select

from activities.ledger.tables import DeliveryRow, RunRow
from schemas.runs import Stage
from tests.runtime import payloads
from workers.testkit import HandoffKit
from workflows.catalog import CATALOG


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("reservation.confirmed", payloads.reservation),
        ("deal.won", payloads.deal),
        ("order.placed", payloads.order),
    ],
)
async def test_good_event_is_delivered_with_exactly_the_synced_fields(
    kit: HandoffKit, event: str, payload: Any
) -> None:
    """A valid event ends delivered; each target row holds the synced fields and none of the local ones."""
    body = payload()
    accepted = await kit.send(event, body)
    result = await kit.result(accepted.workflow_id)

    contract = CATALOG.for_event(event)
    assert contract.sync is not None
    assert Stage.DELIVERED == result.stage
    assert [] == result.cases
    for target in contract.sync.targets:
        row = kit.systems.adapter(target.system).read(accepted.workflow_id)
        assert row is not None
        written = {name for name in row if name not in ("record_key", "written_at")}
        expected = {target.target_name(path) for path in target.fields if _value(body, path) not in (None, "", [])}
        assert expected == written
        for local in contract.sync.local:
            assert local.replace(".", "_") not in row
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
    assert sorted(t.system for t in contract.sync.targets) == sorted(d.system for d in deliveries)


def _value(payload: dict[str, Any], path: str) -> Any:
    entity, field = path.split(".", 1)
    return payload[entity].get(field)
