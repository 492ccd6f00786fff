"""Only the owning group decides, only as the contract allows, and only once; a refused decision changes nothing."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from examples.restaurant import RestaurantApp
from handoff.activities.ledger.tables import DecisionRow, RefusedDecisionRow, RunRow
from handoff.schemas.cases import DecisionRequest, RefusalKind
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import Stage
from handoff.workers.decisions import DecisionRefused
from handoff.workers.testkit import HandoffKit
from tests.runtime import payloads
from tests.runtime.test_cases import bad_reservation


def ledger_snapshot(kit: HandoffKit, workflow_id: str) -> tuple[str, int, int]:
    """The run's stage and its decision rows: what a refused decision must leave unchanged."""
    with Session(kit.ledger) as session:
        run = session.get(RunRow, workflow_id)
        decisions = session.exec(
            select(func.count()).select_from(DecisionRow).where(DecisionRow.workflow_id == workflow_id)
        ).one()
        step = run.last_step if run else -1
    assert run is not None
    return run.stage, step, decisions


async def refused(kit: HandoffKit, workflow_id: str, request: DecisionRequest) -> DecisionRefused:
    with pytest.raises(DecisionRefused) as raised:
        await kit.decide(
            workflow_id,
            request.case_id,
            request.decision,
            operator=request.operator,
            groups=request.operator_groups,
            patch=request.patch,
        )
    return raised.value


async def test_update_refusals_say_why_and_change_nothing(kit: HandoffKit) -> None:
    """A non-owner, a disallowed decision and a bad correction are refused with a reason; run and ledger unchanged."""
    accepted = await kit.send("deal.won", payloads.deal(deal__currency="CHF"))
    case = await kit.open_case(accepted.workflow_id)
    before = (await kit.status(accepted.workflow_id), ledger_snapshot(kit, accepted.workflow_id))

    not_owner = await refused(
        kit,
        accepted.workflow_id,
        DecisionRequest(
            case_id=case.id, decision=DecisionKind.REJECT, operator="fin", operator_groups=("finance",), reason="x"
        ),
    )
    not_allowed = await refused(
        kit,
        accepted.workflow_id,
        DecisionRequest(
            case_id=case.id, decision=DecisionKind.APPROVE, operator="sam", operator_groups=("sales-ops",), reason="x"
        ),
    )
    bad_patch = await refused(
        kit,
        accepted.workflow_id,
        DecisionRequest(
            case_id=case.id,
            decision=DecisionKind.CORRECT,
            operator="sam",
            operator_groups=("sales-ops",),
            reason="x",
            patch={"deal.amount_cents": "lots"},
        ),
    )
    unknown_field = await refused(
        kit,
        accepted.workflow_id,
        DecisionRequest(
            case_id=case.id,
            decision=DecisionKind.CORRECT,
            operator="sam",
            operator_groups=("sales-ops",),
            reason="x",
            patch={"deal.colour": "red"},
        ),
    )

    assert RefusalKind.NOT_OWNER == not_owner.refusal.kind
    assert "owned by 'sales-ops'" in str(not_owner)
    assert RefusalKind.NOT_ALLOWED == not_allowed.refusal.kind
    assert "does not allow 'approve'" in str(not_allowed)
    assert RefusalKind.INVALID_CORRECTION == bad_patch.refusal.kind
    assert "deal.amount_cents" in str(bad_patch)
    assert "'deal.colour'" in str(unknown_field)
    assert before == (await kit.status(accepted.workflow_id), ledger_snapshot(kit, accepted.workflow_id))


async def test_a_second_decision_on_a_decided_case_is_refused(kit: HandoffKit) -> None:
    """Once decided, a case stays decided: a second decision on it is refused while the run goes on."""
    accepted = await kit.send("reservation.confirmed", bad_reservation())
    first = await kit.open_case(accepted.workflow_id)
    await kit.decide(
        accepted.workflow_id,
        first.id,
        DecisionKind.CORRECT,
        operator="hana",
        groups=("front-of-house",),
        patch={"reservation.party_size": 6, "guest.name": "Ada", "reservation.channel": "web"},
    )
    await kit.open_case(accepted.workflow_id)
    before = (await kit.status(accepted.workflow_id), ledger_snapshot(kit, accepted.workflow_id))

    again = await refused(
        kit,
        accepted.workflow_id,
        DecisionRequest(
            case_id=first.id,
            decision=DecisionKind.APPROVE,
            operator="hana",
            operator_groups=("front-of-house",),
            reason="x",
        ),
    )

    assert RefusalKind.ALREADY_DECIDED == again.refusal.kind
    assert f"Case {first.id} was already decided (correct by hana)" in str(again)
    assert before == (await kit.status(accepted.workflow_id), ledger_snapshot(kit, accepted.workflow_id))


async def test_a_decision_on_a_finished_run_is_refused_as_decided(kit: HandoffKit) -> None:
    """After the run ended, its case can no longer be decided; the caller hears so instead of an RPC error."""
    accepted = await kit.send("reservation.confirmed", bad_reservation())
    case = await kit.open_case(accepted.workflow_id)
    await kit.decide(accepted.workflow_id, case.id, DecisionKind.REJECT, operator="hana", groups=("front-of-house",))
    await kit.result(accepted.workflow_id)

    late = await refused(
        kit,
        accepted.workflow_id,
        DecisionRequest(
            case_id=case.id,
            decision=DecisionKind.APPROVE,
            operator="hana",
            operator_groups=("front-of-house",),
            reason="x",
        ),
    )

    assert RefusalKind.ALREADY_DECIDED == late.refusal.kind


async def test_refused_signals_are_recorded_and_a_valid_signal_decides(
    kit: HandoffKit, restaurant: RestaurantApp
) -> None:
    """Signals get the same checks: refusals land in the case's history and the ledger; a valid one decides."""
    accepted = await kit.send("deal.won", payloads.deal(deal__currency="CHF"))
    case = await kit.open_case(accepted.workflow_id)
    handle = kit.client.get_workflow_handle(accepted.workflow_id)
    attempts = [
        DecisionRequest(
            case_id=case.id, decision=DecisionKind.REJECT, operator="fin", operator_groups=("finance",), reason="x"
        ),
        DecisionRequest(
            case_id=case.id, decision=DecisionKind.APPROVE, operator="sam", operator_groups=("sales-ops",), reason="x"
        ),
        DecisionRequest(
            case_id="C-nope", decision=DecisionKind.REJECT, operator="sam", operator_groups=("sales-ops",), reason="x"
        ),
    ]
    for attempt in attempts:
        await handle.signal("decision", attempt)
    status = await kit.wait_for(
        accepted.workflow_id,
        lambda s: 3 == sum(len(c.refused) for c in s.cases) + len(s.unmatched_refusals),
        what="three refusals",
    )
    await asyncio.sleep(0.3)  # the refusals' ledger activities run right after the signals are handled

    assert Stage.AWAITING_DECISION == status.stage
    assert [RefusalKind.NOT_OWNER, RefusalKind.NOT_ALLOWED] == [r.kind for r in status.cases[0].refused]
    assert [RefusalKind.UNKNOWN_CASE] == [r.kind for r in status.unmatched_refusals]
    with Session(kit.ledger) as session:
        rows = session.exec(
            select(RefusedDecisionRow)
            .where(RefusedDecisionRow.workflow_id == accepted.workflow_id)
            .order_by(RefusedDecisionRow.sequence)
        ).all()
        decisions = session.exec(select(DecisionRow).where(DecisionRow.workflow_id == accepted.workflow_id)).all()
    assert [(1, "fin"), (2, "sam"), (3, "sam")] == [(r.sequence, r.operator) for r in rows]
    assert [] == decisions

    await handle.signal(
        "decision",
        DecisionRequest(
            case_id=case.id,
            decision=DecisionKind.CORRECT,
            operator="sam",
            operator_groups=("sales-ops",),
            reason="customer pays in euros",
            patch={"deal.currency": "EUR"},
        ),
    )
    result = await kit.result(accepted.workflow_id)

    assert Stage.DELIVERED == result.stage
    invoice = restaurant.systems.adapter("invoicing").read(accepted.workflow_id)
    assert invoice is not None and "EUR" == invoice["deal_currency"]
