"""A decision whose verification fails every attempt (`DECISIONS_RECORDED_WHEN_VERIFIED`): refused as unverified,
its step never used again, the run's stage and case written back; the decision sent again is taken. In a file of its
own: its retries take about 12 s, which the test runner spreads across its workers by file."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import Client

from handoff import Handoffs
from handoff.schemas.cases import RefusalKind
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import Stage
from handoff.workers.decisions import DecisionRefused, decide
from handoff.workers.testkit import running_handoffs
from tests.runtime.test_decisions_recorded_when_verified import (
    HOSTS,
    hanas,
    ledger_rows,
    operator_reads,
    sample_app,
    without_party_size,
)


@pytest.fixture
def app() -> Handoffs:
    return sample_app()


async def test_a_decision_whose_verification_fails_is_refused_and_its_step_never_used_again(
    client: Client, app: Handoffs, tmp_path: Path
) -> None:
    """The ledger cannot be read for every attempt: the decision is refused as unverified and the run waits on. An
    attempt may have written it before the last failed, so its step is skipped: the decision sent again is recorded
    in the next one, and replaces whatever such an attempt left (tests/activities/test_ledger_writes.py)."""
    attempts: list[int] = []

    def ledger_down() -> None:
        attempts.append(1)
        raise RuntimeError("the ledger is down")

    async with running_handoffs(client, app, tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", without_party_size())
        case = await kit.open_case(accepted.workflow_id)
        request = hanas(kit, case.id, DecisionKind.APPROVE)
        with operator_reads(ledger_down), pytest.raises(DecisionRefused) as refused:
            await decide(kit.client, accepted.workflow_id, request, key=kit.decision_key)
        status = await kit.status(accepted.workflow_id)
        reopened, case_reopened, _ = ledger_rows(kit.ledger, accepted.workflow_id, case.id)
        decided = await kit.decide(accepted.workflow_id, case.id, DecisionKind.APPROVE, operator="hana", groups=HOSTS)
        assert Stage.DELIVERED == (await kit.result(accepted.workflow_id)).stage
        run, _, decision_row = ledger_rows(kit.ledger, accepted.workflow_id, case.id)

    assert RefusalKind.UNAUTHORISED == refused.value.refusal.kind
    assert "could not be verified" in refused.value.refusal.message
    assert "the run did not take it: send it again" in refused.value.refusal.message
    assert 5 == len(attempts)  # every attempt of VERIFY_RETRY
    assert (Stage.AWAITING_DECISION, None) == (status.stage, status.cases[0].decision)
    assert "delivering" == decided.next_stage
    # Step 3 was handed to the verification: never used again. The refusal wrote the stage and the open case again
    # at step 4 (undoing whatever an attempt may have written at 3), and the decision taken next is step 5.
    assert ("awaiting-decision", 4, "open") == (reopened.stage, reopened.last_step, case_reopened.status)
    assert decision_row is not None and "approve" == decision_row.decision
    assert 6 == run.last_step  # 5 the decision, 6 delivered
