"""Four eyes: where the contract asks for it, an approval or a correction takes effect only when a second operator of
the owner group agrees. The same operator twice, or a second decision that differs, is refused and audited; a
rejection needs no second pair of eyes.

The POS is a test adapter (the adapter boundary is where a fake belongs), counting its writes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select
from temporalio.client import Client

from handoff import Handoffs, Max, Min, WriteOutcome
from handoff.activities.ledger.tables import CaseEventRow, DecisionRow
from handoff.schemas.cases import RefusalKind
from handoff.schemas.contract import DecisionKind, ExceptionPolicy, FourEyes
from handoff.schemas.findings import FindingKind
from handoff.schemas.runs import Stage
from handoff.workers.decisions import DecisionRefused
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.workflows.sample_contracts import GROUPS, ready_contract
from tests.workflows.sample_contracts import check as gate

HOSTS = ("hosts",)
BIG_PARTY = Min(field="booking.party_size", value=8, reason="Parties of eight or more.")
POLICY = ExceptionPolicy(
    owner="hosts", escalation=("managers",), on_timeout=DecisionKind.REJECT, four_eyes=FourEyes(when=BIG_PARTY)
)
RULES = (Max(field="booking.party_size", value=6, reason="The floor seats six at a table."),)


class Pos:
    def __init__(self) -> None:
        self.writes = 0

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        self.writes += 1
        return WriteOutcome.WRITTEN


def _app(pos: Pos) -> Handoffs:
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(rules=RULES, exceptions=POLICY),))
    app.source("bookings")
    app.system("pos", pos)
    return app


async def _case(kit: HandoffKit, party_size: int) -> tuple[str, str]:
    body = {"booking": {"id": f"B-{uuid.uuid4().hex[:8]}", "party_size": party_size}, "guest": {"name": "Ada"}}
    accepted = await kit.send("booking.confirmed", body)
    case = await kit.open_case(accepted.workflow_id)
    return accepted.workflow_id, case.id


async def _refused(kit: HandoffKit, workflow_id: str, case_id: str, decision: DecisionKind, **options: Any) -> str:
    with pytest.raises(DecisionRefused) as refused:
        await kit.decide(workflow_id, case_id, decision, groups=HOSTS, **options)
    return f"{refused.value.refusal.kind.value}: {refused.value.refusal.message}"


async def test_a_second_operator_must_agree_and_the_same_one_twice_is_refused(client: Client, tmp_path: Path) -> None:
    pos = Pos()
    async with running_handoffs(client, _app(pos), tmp_path) as kit:
        workflow_id, case_id = await _case(kit, party_size=10)

        first = await kit.decide(workflow_id, case_id, DecisionKind.APPROVE, operator="ana", groups=HOSTS)
        again = await _refused(kit, workflow_id, case_id, DecisionKind.APPROVE, operator="ana")
        other = await _refused(
            kit, workflow_id, case_id, DecisionKind.CORRECT, operator="bo", patch={"booking.party_size": 6}
        )
        status = await kit.status(workflow_id)
        second = await kit.decide(workflow_id, case_id, DecisionKind.APPROVE, operator="bo", groups=HOSTS)
        result = await kit.result(workflow_id)
        with Session(kit.ledger) as session:
            events = session.exec(select(CaseEventRow).where(CaseEventRow.case_id == case_id)).all()
            decisions = session.exec(select(DecisionRow).where(DecisionRow.case_id == case_id)).all()

    assert Stage.AWAITING_DECISION.value == first.next_stage
    assert first.case.first_approval is not None and "ana" == first.case.first_approval.operator
    assert again.startswith(RefusalKind.SAME_APPROVER.value) and "another operator of 'hosts'" in again
    assert other.startswith(RefusalKind.DISAGREES.value) and "ana" in other
    assert [RefusalKind.SAME_APPROVER, RefusalKind.DISAGREES] == [r.kind for r in status.cases[0].refused]
    assert Stage.DELIVERING.value == second.next_stage
    assert (Stage.DELIVERED, 1) == (result.stage, pos.writes)
    assert [("first-approval", "ana")] == [(event.kind, event.operator) for event in events]
    assert [("approve", "bo")] == [(row.decision, row.operator) for row in decisions]


async def test_a_correction_needs_the_same_values_from_the_second_operator(client: Client, tmp_path: Path) -> None:
    pos = Pos()
    async with running_handoffs(client, _app(pos), tmp_path) as kit:
        workflow_id, case_id = await _case(kit, party_size=9)
        fix = {"booking.party_size": 6}
        await kit.decide(workflow_id, case_id, DecisionKind.CORRECT, operator="ana", groups=HOSTS, patch=fix)
        second = await kit.decide(workflow_id, case_id, DecisionKind.CORRECT, operator="bo", groups=HOSTS, patch=fix)
        result = await kit.result(workflow_id)
        with Session(kit.ledger) as session:
            [first] = session.exec(select(CaseEventRow).where(CaseEventRow.case_id == case_id)).all()

    # The history names the corrected field, never its value: it is shown unmasked, and outlives a purge.
    assert "correct of booking.party_size: checked with the guest" == first.text
    assert Stage.VALIDATING.value == second.next_stage
    assert (Stage.DELIVERED, 1) == (result.stage, pos.writes)


async def test_below_the_condition_one_approval_is_enough_and_one_rejection_always_is(
    client: Client, tmp_path: Path
) -> None:
    pos = Pos()
    async with running_handoffs(client, _app(pos), tmp_path) as kit:
        small, small_case = await _case(kit, party_size=7)  # breaks the rule, below the four-eyes condition
        big, big_case = await _case(kit, party_size=12)
        alone = await kit.decide(small, small_case, DecisionKind.APPROVE, operator="ana", groups=HOSTS)
        await kit.decide(big, big_case, DecisionKind.APPROVE, operator="ana", groups=HOSTS)
        stopped = await kit.decide(big, big_case, DecisionKind.REJECT, operator="ana", groups=HOSTS)
        results = [await kit.result(small), await kit.result(big)]

    assert (Stage.DELIVERING.value, Stage.REJECTED.value) == (alone.next_stage, stopped.next_stage)
    assert [Stage.DELIVERED, Stage.REJECTED] == [result.stage for result in results]
    assert 1 == pos.writes


def test_the_gate_reads_the_four_eyes_condition_like_any_rule() -> None:
    typo = ExceptionPolicy(
        owner="hosts",
        on_timeout=DecisionKind.REJECT,
        four_eyes=FourEyes(when=Min(field="booking.party_sise", value=8, reason="r")),
    )

    readiness = gate(ready_contract(exceptions=typo))

    assert [FindingKind.UNKNOWN_FIELD] == [finding.kind for finding in readiness.findings]
    assert "the four-eyes condition" in readiness.findings[0].message
