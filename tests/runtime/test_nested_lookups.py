"""A look-up inside a `When` is run and judged: it opens a case where its condition holds, and only there."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from handoff import Handoffs, Lookup, OneOf, When, WriteOutcome
from handoff.schemas.runs import Stage
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.workflows.sample_contracts import GROUPS, ready_contract

VIP_TABLE_IS_FREE = When(
    condition=OneOf(field="booking.channel", values=("vip-line",), reason="c"),
    then=Lookup(check="pos.table_is_free", field="booking.table", reason="VIP bookings need their table free now."),
    reason="A VIP booking's table must be free.",
)


class Pos:
    """An in-memory POS: this test is about validation, so delivery is faked at the adapter boundary."""

    def __init__(self) -> None:
        self.records: dict[str, Mapping[str, Any]] = {}

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        if record_key in self.records:
            return WriteOutcome.ALREADY_WRITTEN
        self.records[record_key] = dict(fields)
        return WriteOutcome.WRITTEN


@pytest.fixture
async def tables(client: Client, tmp_path: Path) -> AsyncIterator[HandoffKit]:
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(rules=(VIP_TABLE_IS_FREE,)),))
    app.source("bookings")
    app.system("pos", Pos())
    app.lookup("pos.table_is_free")(lambda table: table != "T1")  # T1 is taken
    async with running_handoffs(client, app, tmp_path, sla_scale=1 / 1800) as kit:
        yield kit


def booking(ref: str, channel: str, table: str) -> dict[str, Any]:
    return {"booking": {"id": ref, "party_size": 2, "channel": channel, "table": table}, "guest": {"name": "Ada"}}


async def test_a_failed_lookup_inside_a_when_opens_a_case(tables: HandoffKit) -> None:
    accepted = await tables.send("booking.confirmed", booking("B-1", "vip-line", "T1"))

    case = await tables.open_case(accepted.workflow_id)

    assert [("when", "booking.table", "T1")] == [(v.kind, v.field, v.value) for v in case.violations]
    assert "A VIP booking's table must be free." == case.violations[0].reason


@pytest.mark.parametrize(("channel", "table"), [("web", "T1"), ("vip-line", "T2")])
async def test_it_holds_where_its_condition_does_not_or_the_lookup_passes(
    tables: HandoffKit, channel: str, table: str
) -> None:
    accepted = await tables.send("booking.confirmed", booking(f"B-{channel}-{table}", channel, table))

    status = await tables.wait_for_stage(accepted.workflow_id, Stage.DELIVERED, Stage.AWAITING_DECISION)

    assert Stage.DELIVERED == status.stage
