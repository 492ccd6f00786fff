"""A delivery the target system refuses, or never answers, becomes an exception case: never a failed run, never an
endless retry. The operator corrects the field and the record is delivered once, retries, or rejects the run.

The target systems here are test adapters (the adapter boundary is where a fake belongs): they refuse what a real
system's API would refuse, and count their writes, so the tests can say "written once".
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, select
from temporalio.client import Client

from examples.restaurant import RestaurantApp
from handoff import Handoffs, InvalidFieldValue, WriteOutcome
from handoff.activities.ledger.tables import CaseRow, RunRow, ViolationRow
from handoff.schemas.contract import DecisionKind, ExceptionPolicy, Sync, SyncTarget
from handoff.schemas.runs import Stage
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.runtime import payloads
from tests.workflows.sample_contracts import GROUPS, ready_contract

HOSTS = ("hosts",)


class ShortNamesPos:
    """A POS whose guest column holds ten characters, like a real one with a narrow column; writes are counted."""

    def __init__(self, *, down_for: int = 0) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self.down_for = down_for
        """How many writes fail with a connection error before the POS answers again."""

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        if self.down_for > 0:
            self.down_for -= 1
            raise ConnectionError("the POS is not answering")
        name = fields.get("guest_name")
        if isinstance(name, str) and len(name) > 10:
            raise InvalidFieldValue("pos", "guest_name", name, "text of at most 10 characters")
        if record_key in self.records:
            return WriteOutcome.ALREADY_WRITTEN
        self.writes += 1
        self.records[record_key] = dict(fields)
        return WriteOutcome.WRITTEN


class Kitchen:
    """A second target that takes anything: to see that a refusal elsewhere does not write it twice."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        self.writes += 1
        return WriteOutcome.WRITTEN


def _app(pos: ShortNamesPos, *, kitchen: Kitchen | None = None, **contract: Any) -> Handoffs:
    targets = [SyncTarget(system="pos", fields=("booking.id", "booking.party_size", "guest.name"), attempts=2)]
    if kitchen is not None:
        targets.append(SyncTarget(system="kitchen", fields=("booking.party_size",)))
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(sync=Sync(targets=tuple(targets)), **contract),))
    app.source("bookings")
    app.system("pos", pos)
    if kitchen is not None:
        app.system("kitchen", kitchen)
    return app


def _booking(name: str) -> dict[str, Any]:
    return {"booking": {"id": f"B-{uuid.uuid4().hex[:8]}", "party_size": 2}, "guest": {"name": name}}


def _run_row(kit: HandoffKit, workflow_id: str) -> RunRow:
    with Session(kit.ledger) as session:
        run = session.get(RunRow, workflow_id)
    assert run is not None
    return run


async def test_a_value_the_target_refuses_opens_a_case_and_the_correction_is_delivered_once(
    client: Client, tmp_path: Path
) -> None:
    pos, kitchen = ShortNamesPos(), Kitchen()
    async with running_handoffs(client, _app(pos, kitchen=kitchen), tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", _booking("Bartholomew Featherstonehaugh"))
        case = await kit.open_case(accepted.workflow_id)

        [violation] = case.violations
        assert ("delivery", "guest.name", "pos accepts guest_name") == (violation.kind, violation.field, violation.rule)
        assert "at most 10 characters" in violation.reason and violation.value == "Bartholomew Featherstonehaugh"
        assert (0, 1) == (pos.writes, kitchen.writes)  # the kitchen took its part; nothing reached the POS
        with Session(kit.ledger) as session:
            recorded = session.exec(select(ViolationRow).where(ViolationRow.case_id == case.id)).all()
        assert ["guest.name"] == [row.field for row in recorded]

        decided = await kit.decide(
            accepted.workflow_id,
            case.id,
            DecisionKind.CORRECT,
            operator="ana",
            groups=HOSTS,
            patch={"guest.name": "B. Feather"},
        )
        result = await kit.result(accepted.workflow_id)

    assert Stage.VALIDATING.value == decided.next_stage  # a correction is checked against the rules again
    assert Stage.DELIVERED == result.stage
    assert (1, 1) == (pos.writes, kitchen.writes)  # each system written once, the kitchen not again
    assert "B. Feather" == pos.records[accepted.workflow_id]["guest_name"]
    assert Stage.DELIVERED.value == _run_row(kit, accepted.workflow_id).stage


async def test_rejecting_a_refused_delivery_ends_the_run_rejected(client: Client, tmp_path: Path) -> None:
    pos = ShortNamesPos()
    async with running_handoffs(client, _app(pos), tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", _booking("Bartholomew Featherstonehaugh"))
        case = await kit.open_case(accepted.workflow_id)
        await kit.decide(accepted.workflow_id, case.id, DecisionKind.REJECT, operator="ana", groups=HOSTS)
        result = await kit.result(accepted.workflow_id)

    assert (Stage.REJECTED, 0) == (result.stage, pos.writes)
    assert Stage.REJECTED.value == _run_row(kit, accepted.workflow_id).stage


async def test_a_target_that_never_answers_opens_a_case_after_its_attempts_and_a_retry_delivers(
    client: Client, tmp_path: Path
) -> None:
    pos = ShortNamesPos(down_for=2)  # the target's two attempts both fail
    async with running_handoffs(client, _app(pos), tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", _booking("Ada"))
        case = await kit.open_case(accepted.workflow_id, timeout=30)

        [violation] = case.violations
        assert ("delivery", "", "pos takes the record") == (violation.kind, violation.field, violation.rule)
        assert "after 2 attempt(s)" in violation.reason and "the POS is not answering" in violation.reason
        assert 0 == pos.down_for and 0 == pos.writes  # tried exactly twice, then stopped

        decided = await kit.decide(accepted.workflow_id, case.id, DecisionKind.RETRY, operator="ana", groups=HOSTS)
        result = await kit.result(accepted.workflow_id)

    assert Stage.DELIVERING.value == decided.next_stage
    assert (Stage.DELIVERED, 1) == (result.stage, pos.writes)


async def test_a_refused_delivery_nobody_decides_is_rejected_even_when_the_contract_approves_on_timeout(
    client: Client, tmp_path: Path
) -> None:
    """Approving unchanged would send the record the system just refused: the run is rejected, and says why."""
    pos = ShortNamesPos()
    policy = ExceptionPolicy(owner="hosts", sla=timedelta(seconds=1), on_timeout=DecisionKind.APPROVE)
    async with running_handoffs(client, _app(pos, exceptions=policy), tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", _booking("Bartholomew Featherstonehaugh"))
        result = await kit.result(accepted.workflow_id)
        with Session(kit.ledger) as session:
            [case] = session.exec(select(CaseRow).where(CaseRow.workflow_id == accepted.workflow_id)).all()

    assert (Stage.REJECTED, 0) == (result.stage, pos.writes)
    [decision] = [c.decision for c in result.cases]
    assert decision is not None and decision.by_timeout and DecisionKind.REJECT == decision.decision
    assert "would be refused again" in decision.reason
    assert case.status == "decided"


async def test_the_restaurant_stops_an_amount_invoicing_cannot_hold_at_validation_and_invoices_the_correction_once(
    kit: HandoffKit, restaurant: RestaurantApp
) -> None:
    """The issue's own example, a won deal of 2**40 cents: invoicing declares its column (a 32-bit integer), so the
    gate made the contract bound the amount, and the event waits for a decision before anything is written."""
    accepted = await kit.send("deal.won", payloads.deal(deal__amount_cents=2**40))
    case = await kit.open_case(accepted.workflow_id)

    [violation] = case.violations
    assert ("max", "deal.amount_cents", 2**40) == (violation.kind, violation.field, violation.value)
    assert [] == restaurant.systems.rows("invoicing")

    await kit.decide(
        accepted.workflow_id,
        case.id,
        DecisionKind.CORRECT,
        operator="sam",
        groups=("sales-ops",),
        patch={"deal.amount_cents": 1_250_000},
    )
    result = await kit.result(accepted.workflow_id)

    assert Stage.DELIVERED == result.stage
    assert [1_250_000] == [row["deal_amount_cents"] for row in restaurant.systems.rows("invoicing")]
