"""Only the owning group decides, only as the contract allows, and only once; a refused decision leaves the case as
it was, and the refusal is audited: in the case's history and in the ledger, through the Update as through the signal.

(Who may send a decision at all, the attestation and the ledger's groups, is tests/runtime/test_authorised_decisions.py.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from examples.restaurant import RestaurantApp
from handoff.activities.authorisation import attest
from handoff.activities.ledger.tables import CaseRow, DecisionRow, RefusedDecisionRow, RunRow
from handoff.schemas.cases import DecisionRequest, RefusalKind
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import HandoffStatus, Stage
from handoff.workers.decisions import DecisionRefused
from handoff.workers.testkit import HandoffKit
from handoff.workflows.handoff import HandoffWorkflow
from tests.runtime import payloads
from tests.runtime.test_cases import bad_reservation


def ledger_snapshot(kit: HandoffKit, workflow_id: str) -> tuple[str, list[tuple[Any, ...]], int]:
    """The run's stage, its cases and its decision rows: what a refused decision must leave unchanged. (Not the run's
    step count: a refusal may write the stage and the case again, as they were.)"""
    with Session(kit.ledger) as session:
        run = session.get(RunRow, workflow_id)
        cases = session.exec(select(CaseRow).where(CaseRow.workflow_id == workflow_id).order_by(CaseRow.id)).all()
        decisions = session.exec(
            select(func.count()).select_from(DecisionRow).where(DecisionRow.workflow_id == workflow_id)
        ).one()
    assert run is not None
    return run.stage, [(c.id, c.status, c.owner_group, c.decision) for c in cases], decisions


def without_refusals(status: HandoffStatus) -> HandoffStatus:
    """The run's status minus the refused attempts its cases keep: what a refused decision must leave unchanged."""
    cases = [case.model_copy(update={"refused": []}) for case in status.cases]
    return status.model_copy(update={"cases": cases, "unmatched_refusals": []})


def audited(kit: HandoffKit, workflow_id: str) -> list[tuple[int, str, str]]:
    """The ledger's refused attempts of the run: sequence, operator, refusal."""
    with Session(kit.ledger) as session:
        rows = session.exec(
            select(RefusedDecisionRow)
            .where(RefusedDecisionRow.workflow_id == workflow_id)
            .order_by(RefusedDecisionRow.sequence)
        ).all()
    return [(row.sequence, row.operator, row.refusal) for row in rows]


async def audited_count(kit: HandoffKit, workflow_id: str, count: int, timeout: float = 15) -> None:
    """Wait until the ledger holds `count` refused attempts of the run (a loaded machine takes its time)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while len(audited(kit, workflow_id)) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{workflow_id}: {count} refusals did not reach the ledger within {timeout}s")
        await asyncio.sleep(0.05)


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


async def test_update_refusals_say_why_change_nothing_and_are_audited(kit: HandoffKit) -> None:
    """A non-owner, a disallowed decision and a bad correction are refused with a reason; the run and its ledger
    records are as they were, and each refusal is in the case's history and the ledger."""
    accepted = await kit.send("deal.won", payloads.deal(deal__currency="CHF"))
    case = await kit.open_case(accepted.workflow_id)
    before = (without_refusals(await kit.status(accepted.workflow_id)), ledger_snapshot(kit, accepted.workflow_id))

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
    after = await kit.status(accepted.workflow_id)
    assert before == (without_refusals(after), ledger_snapshot(kit, accepted.workflow_id))
    in_history = [(r.request.operator, r.refusal) for r in after.cases[0].refused]
    assert [
        ("fin", str(not_owner)),
        ("sam", str(not_allowed)),
        ("sam", str(bad_patch)),
        ("sam", str(unknown_field)),
    ] == in_history
    assert [(n, *attempt) for n, attempt in enumerate(in_history, 1)] == audited(kit, accepted.workflow_id)


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
    before = (without_refusals(await kit.status(accepted.workflow_id)), ledger_snapshot(kit, accepted.workflow_id))

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
    after = await kit.status(accepted.workflow_id)
    assert before == (without_refusals(after), ledger_snapshot(kit, accepted.workflow_id))
    assert [RefusalKind.ALREADY_DECIDED] == [r.kind for r in after.cases[0].refused]
    assert [(1, "hana", str(again))] == audited(kit, accepted.workflow_id)


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
    kit.operator("fin", ("finance",))
    kit.operator("sam", ("sales-ops",))
    attempts = [
        DecisionRequest(case_id=case.id, decision=DecisionKind.REJECT, operator="fin", reason="x"),
        DecisionRequest(case_id=case.id, decision=DecisionKind.APPROVE, operator="sam", reason="x"),
        DecisionRequest(case_id="C-nope", decision=DecisionKind.REJECT, operator="sam", reason="x"),
    ]
    for attempt in attempts:
        await handle.signal(HandoffWorkflow.decide_by_signal, attest(attempt, kit.decision_key))
    status = await kit.wait_for(
        accepted.workflow_id,
        lambda s: 3 == sum(len(c.refused) for c in s.cases) + len(s.unmatched_refusals),
        what="three refusals",
    )
    await audited_count(kit, accepted.workflow_id, 3)  # the refusals' ledger activities run after the signals

    assert Stage.AWAITING_DECISION == status.stage
    # Each signal's handler waits on its own verification, so under load they may finish in either order.
    assert {RefusalKind.NOT_OWNER, RefusalKind.NOT_ALLOWED} == {r.kind for r in status.cases[0].refused}
    assert [RefusalKind.UNKNOWN_CASE] == [r.kind for r in status.unmatched_refusals]
    with Session(kit.ledger) as session:
        decisions = session.exec(select(DecisionRow).where(DecisionRow.workflow_id == accepted.workflow_id)).all()
    recorded = audited(kit, accepted.workflow_id)
    assert ([1, 2, 3], ["fin", "sam", "sam"]) == ([s for s, _, _ in recorded], sorted(o for _, o, _ in recorded))
    assert [] == decisions

    await handle.signal(
        HandoffWorkflow.decide_by_signal,
        attest(
            DecisionRequest(
                case_id=case.id,
                decision=DecisionKind.CORRECT,
                operator="sam",
                reason="customer pays in euros",
                patch={"deal.currency": "EUR"},
            ),
            kit.decision_key,
        ),
    )
    result = await kit.result(accepted.workflow_id)

    assert Stage.DELIVERED == result.stage
    invoice = restaurant.systems.adapter("invoicing").read(accepted.workflow_id)
    assert invoice is not None and "EUR" == invoice["deal_currency"]
