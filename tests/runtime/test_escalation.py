"""When nobody decides, the case climbs the contract's chain; at its end the contract decides.

reservation-to-pos has a 30-minute SLA per group; the test kit scales SLAs by 1/1800, so each group has a second.
"""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from handoff.activities.ledger.tables import CaseRow, DecisionRow, EscalationRow
from handoff.schemas.cases import RefusalKind
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import Stage
from handoff.workers.decisions import DecisionRefused
from handoff.workers.testkit import HandoffKit
from handoff.workflows import search_attributes as sa
from tests.runtime.test_cases import bad_reservation


async def test_sla_escalates_to_the_next_group_which_then_decides(kit: HandoffKit) -> None:
    """After the SLA, restaurant-managers own the case: front-of-house is refused, a manager's decision counts."""
    accepted = await kit.send("reservation.confirmed", bad_reservation())
    case = await kit.open_case(accepted.workflow_id)
    status = await kit.wait_for(
        accepted.workflow_id, lambda s: s.cases[0].owner_group == "restaurant-managers", what="escalation"
    )

    escalated = status.cases[0]
    assert [("front-of-house", "restaurant-managers")] == [(e.from_group, e.to_group) for e in escalated.escalations]
    description = await kit.client.get_workflow_handle(accepted.workflow_id).describe()
    assert "restaurant-managers" == description.typed_search_attributes.get(sa.OWNER_GROUP)
    with pytest.raises(DecisionRefused) as late:
        await kit.decide(
            accepted.workflow_id, case.id, DecisionKind.APPROVE, operator="hana", groups=("front-of-house",)
        )
    assert RefusalKind.NOT_OWNER == late.value.refusal.kind

    await kit.decide(
        accepted.workflow_id, case.id, DecisionKind.APPROVE, operator="max", groups=("restaurant-managers",)
    )
    result = await kit.result(accepted.workflow_id)

    assert Stage.DELIVERED == result.stage
    with Session(kit.ledger) as session:
        escalations = session.exec(select(EscalationRow).where(EscalationRow.case_id == case.id)).all()
        decision = session.get(DecisionRow, case.id)
    assert [("front-of-house", "restaurant-managers")] == [(e.from_group, e.to_group) for e in escalations]
    assert decision is not None and ("max", "restaurant-managers") == (decision.operator, decision.group)


async def test_end_of_chain_applies_the_contracts_decision(kit: HandoffKit) -> None:
    """With nobody deciding through the whole chain, the contract's end-of-chain decision (reject) is applied."""
    accepted = await kit.send("reservation.confirmed", bad_reservation())
    case = await kit.open_case(accepted.workflow_id)

    result = await kit.result(accepted.workflow_id)

    assert Stage.REJECTED == result.stage
    decided = result.cases[0].decision
    assert decided is not None
    assert (DecisionKind.REJECT, "contract", True) == (decided.decision, decided.operator, decided.by_timeout)
    with Session(kit.ledger) as session:
        decision = session.get(DecisionRow, case.id)
        case_row = session.get(CaseRow, case.id)
        escalations = session.exec(select(EscalationRow).where(EscalationRow.case_id == case.id)).all()
    assert decision is not None and case_row is not None
    assert ("reject", True, "contract") == (decision.decision, decision.by_timeout, decision.operator)
    assert ("decided", "restaurant-managers", 1) == (case_row.status, case_row.owner_group, len(escalations))
