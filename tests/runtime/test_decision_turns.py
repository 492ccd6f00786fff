"""Decisions and escalations take turns (`DECISIONS_RECORDED_WHEN_VERIFIED`): an SLA that passes while a decision is
being verified waits for it. In a file of its own: its verification takes 9 s, which the test runner spreads across
its workers by file."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select
from temporalio.client import Client

from handoff import Handoffs
from handoff.activities.ledger.tables import EscalationRow
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import Stage
from handoff.workers.decisions import decide
from handoff.workers.testkit import running_handoffs
from tests.runtime.test_decisions_recorded_when_verified import (
    hanas,
    ledger_rows,
    operator_reads,
    sample_app,
    without_party_size,
)

SLA_SECONDS = 5.0
"""The sample contract's SLA (four hours) scaled down."""
VERIFICATION_SECONDS = 9.0
"""Longer than 80% of a workflow task's 10 s timeout, when the SDK heartbeats a task waiting on a local activity; and
within `verify_decision`'s 10 s start-to-close timeout."""


@pytest.fixture
def app() -> Handoffs:
    return sample_app()


async def test_an_sla_passing_while_a_decision_is_verified_waits_for_it(
    client: Client, app: Handoffs, tmp_path: Path
) -> None:
    """The decision arrives half a second before its case's SLA passes, and its verification takes 9 s: longer than the
    workflow task it started in (the SDK heartbeats it into a new one, which brings the SLA's timer to the run
    meanwhile). The escalation waits its turn, finds the case decided, and escalates nothing. (Runs from before
    escalated at once, then refused the decision: the case had moved to another group.)"""
    slowed: list[float] = []

    def slow_once() -> None:
        if not slowed:
            slowed.append(time.monotonic())
            time.sleep(VERIFICATION_SECONDS)

    async with running_handoffs(client, app, tmp_path, sla_scale=SLA_SECONDS / (4 * 3600)) as kit:
        accepted = await kit.send("booking.confirmed", without_party_size())
        case = await kit.open_case(accepted.workflow_id)
        request = hanas(kit, case.id, DecisionKind.REJECT)
        # After the SLA's warning (at 80%), before its end.
        await asyncio.sleep(max(0.0, (case.sla_deadline - datetime.now(UTC)).total_seconds() - 0.1 * SLA_SECONDS))
        with operator_reads(slow_once):
            decided = await decide(kit.client, accepted.workflow_id, request, key=kit.decision_key)
        status = await kit.status(accepted.workflow_id)
        run, case_row, decision_row = ledger_rows(kit.ledger, accepted.workflow_id, case.id)
        with Session(kit.ledger) as session:
            escalations = session.exec(select(EscalationRow).where(EscalationRow.case_id == case.id)).all()
        assert Stage.REJECTED == (await kit.result(accepted.workflow_id)).stage
        history = await kit.client.get_workflow_handle(accepted.workflow_id).fetch_history()

    assert slowed, "the verification read no operator"
    fired = [e.event_id for e in history.events if e.HasField("timer_fired_event_attributes")]
    [completed] = [
        e.event_id for e in history.events if e.HasField("workflow_execution_update_completed_event_attributes")
    ]
    # The SLA's two timers (its warning, then its end) fired before the decision was taken.
    assert 2 == len(fired) and fired[-1] < completed, "the SLA did not pass while the decision was verified"
    assert decided.case.decision is not None
    assert ("rejected", "hana", "hosts") == (decided.next_stage, decided.case.decision.operator, case_row.owner_group)
    assert [] == status.cases[0].escalations
    assert [] == escalations
    assert decision_row is not None and (False, "hosts", "reject") == (
        decision_row.by_timeout,
        decision_row.group,
        decision_row.decision,
    )
    assert "rejected" == run.stage
