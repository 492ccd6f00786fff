"""A decision is recorded by its verification (`DECISIONS_RECORDED_WHEN_VERIFIED`): one local activity, not two.

The run judges a decision on everything but the operator's groups, then `verify_decision` checks the attestation and
that the operator is in the case's owner group, and records the decision's stage change in the ledger. These tests
hold the ledger to what the run enters for each kind of decision, and follow each way it can go otherwise: a write
that fails (the run writes it), a verification that fails (refused, its step never used again), and an SLA that
passes while a decision is being verified (the decision arrived first: it is taken, the case is not escalated).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, select
from structlog.testing import capture_logs
from temporalio.client import Client, WorkflowHistory

from handoff import Handoffs
from handoff.activities.ledger.tables import CaseRow, DecisionRow, EscalationRow, RunRow
from handoff.schemas.activities import RECORD_STAGE_CHANGE, VERIFY_DECISION
from handoff.schemas.cases import DecisionRequest, RefusalKind
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import Stage
from handoff.workers.decisions import DecisionRefused, decide
from handoff.workers.testkit import running_handoffs
from tests.runtime.test_nested_lookups import Pos  # an in-memory POS: delivery is faked at the adapter boundary
from tests.workflows.sample_contracts import GROUPS, ready_contract

HOSTS = ("hosts",)
SLA_SECONDS = 5.0
"""The sample contract's SLA (four hours) scaled down for the escalation test."""
VERIFICATION_SECONDS = 9.0
"""Longer than 80% of a workflow task's 10 s timeout, when the SDK heartbeats a task waiting on a local activity; and
within `verify_decision`'s 10 s start-to-close timeout."""


@pytest.fixture
def app() -> Handoffs:
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(),))
    app.source("bookings")
    app.system("pos", Pos())
    return app


def without_party_size() -> dict[str, Any]:
    """Bad data for the sample contract: the POS sizes the table from the party, which is missing."""
    return {"booking": {"id": f"B-{uuid.uuid4().hex[:8]}", "channel": "web"}, "guest": {"name": "Ada"}}


def local_activities(history: WorkflowHistory) -> list[str]:
    return [
        json.loads(event.marker_recorded_event_attributes.details["data"].payloads[0].data)["activity_type"]
        for event in history.events
        if event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]


def ledger_rows(ledger: Engine, workflow_id: str, case_id: str) -> tuple[RunRow, CaseRow, DecisionRow | None]:
    with Session(ledger) as session:
        run = session.get(RunRow, workflow_id)
        case = session.get(CaseRow, case_id)
        decision = session.exec(select(DecisionRow).where(DecisionRow.case_id == case_id)).first()
    assert run is not None and case is not None
    return run, case, decision


@contextmanager
def operator_reads(action: Any) -> Iterator[None]:
    """`action()` before every ledger read of the operators table: what `verify_decision` reads first."""

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM operators" in statement:
            action()

    event.listen(Engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(Engine, "before_cursor_execute", before)


@pytest.mark.parametrize(
    ("decision", "patch", "next_stage", "override"),
    [
        (DecisionKind.APPROVE, {}, Stage.DELIVERING, True),
        (DecisionKind.CORRECT, {"booking.party_size": 4}, Stage.VALIDATING, False),
        (DecisionKind.REJECT, {}, Stage.REJECTED, False),
    ],
)
async def test_the_verification_records_the_stage_the_run_enters(
    client: Client,
    app: Handoffs,
    tmp_path: Path,
    decision: DecisionKind,
    patch: dict[str, Any],
    next_stage: Stage,
    override: bool,
) -> None:
    """When `decide` answers, the ledger holds the decision and the stage it sends the run to, written by the one
    local activity that verified it; the run writes nothing more for it."""
    async with running_handoffs(client, app, tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", without_party_size())
        case = await kit.open_case(accepted.workflow_id)
        decided = await kit.decide(accepted.workflow_id, case.id, decision, operator="hana", groups=HOSTS, patch=patch)
        run, case_row, decision_row = ledger_rows(kit.ledger, accepted.workflow_id, case.id)
        result = await kit.result(accepted.workflow_id)
        history = await kit.client.get_workflow_handle(accepted.workflow_id).fetch_history()

    assert next_stage.value == decided.next_stage
    # validating (riding), awaiting-decision, then the decision's stage: the third write.
    assert (next_stage.value, 3, override) == (run.stage, run.last_step, run.override)
    assert ("decided", decision.value) == (case_row.status, case_row.decision)
    assert decision_row is not None
    assert (decision.value, "hana", "hosts", patch) == (
        decision_row.decision,
        decision_row.operator,
        decision_row.group,
        decision_row.patch,
    )
    assert decided.case.decision is not None
    assert decided.case.decision.decided_at == decision_row.decided_at.replace(tzinfo=UTC)
    assert (Stage.REJECTED if decision is DecisionKind.REJECT else Stage.DELIVERED) == result.stage
    # awaiting-decision written before the run waits; the decision's stage by its verification, nothing after it.
    assert [RECORD_STAGE_CHANGE, VERIFY_DECISION] == local_activities(history)


async def test_a_verification_whose_write_fails_leaves_it_to_the_run(
    client: Client, app: Handoffs, tmp_path: Path
) -> None:
    """The ledger refuses the verification's write once: the decision is still taken, and the run records it itself
    before `decide` answers, in a local activity of its own."""
    failed: list[str] = []

    def fail_once(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO decisions") and not failed:
            failed.append(statement)
            raise RuntimeError("the ledger is busy")

    async with running_handoffs(client, app, tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", without_party_size())
        case = await kit.open_case(accepted.workflow_id)
        event.listen(Engine, "before_cursor_execute", fail_once)
        try:
            with capture_logs() as logs:
                decided = await kit.decide(
                    accepted.workflow_id, case.id, DecisionKind.APPROVE, operator="hana", groups=HOSTS
                )
        finally:
            event.remove(Engine, "before_cursor_execute", fail_once)
        run, _, decision_row = ledger_rows(kit.ledger, accepted.workflow_id, case.id)
        result = await kit.result(accepted.workflow_id)
        history = await kit.client.get_workflow_handle(accepted.workflow_id).fetch_history()

    assert failed, "the verification wrote no decision"
    assert ["decision.unrecorded"] == [log["event"] for log in logs if log["event"] == "decision.unrecorded"]
    assert decision_row is not None and "approve" == decision_row.decision  # in the ledger when decide answered
    assert ("delivering", Stage.DELIVERED) == (decided.next_stage, result.stage)
    assert 3 <= run.last_step
    assert [RECORD_STAGE_CHANGE, VERIFY_DECISION, RECORD_STAGE_CHANGE] == local_activities(history)


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
        hana = kit.operator("hana", HOSTS)
        request = DecisionRequest(
            case_id=case.id,
            decision=DecisionKind.APPROVE,
            operator=hana.name,
            operator_groups=hana.groups,
            reason="checked with the guest",
        )
        with operator_reads(ledger_down), pytest.raises(DecisionRefused) as refused:
            await decide(kit.client, accepted.workflow_id, request, key=kit.decision_key)
        status = await kit.status(accepted.workflow_id)
        reopened, case_reopened, _ = ledger_rows(kit.ledger, accepted.workflow_id, case.id)
        decided = await kit.decide(accepted.workflow_id, case.id, DecisionKind.APPROVE, operator="hana", groups=HOSTS)
        run, _, decision_row = ledger_rows(kit.ledger, accepted.workflow_id, case.id)
        assert Stage.DELIVERED == (await kit.result(accepted.workflow_id)).stage

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
    assert 5 == run.last_step


async def test_an_operator_outside_the_owner_group_is_refused_and_nothing_is_written_for_the_decision(
    client: Client, app: Handoffs, tmp_path: Path
) -> None:
    """Verified, but not in the group that owns the case: the verification writes nothing, the run refuses the
    decision as not the owner's and writes its stage and open case again, and the owner decides next."""
    async with running_handoffs(client, app, tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", without_party_size())
        case = await kit.open_case(accepted.workflow_id)
        with pytest.raises(DecisionRefused) as refused:
            await kit.decide(
                accepted.workflow_id, case.id, DecisionKind.APPROVE, operator="tomas", groups=("managers",)
            )
        after_refusal, _, unwritten = ledger_rows(kit.ledger, accepted.workflow_id, case.id)
        decided = await kit.decide(accepted.workflow_id, case.id, DecisionKind.APPROVE, operator="hana", groups=HOSTS)
        run, _, decision_row = ledger_rows(kit.ledger, accepted.workflow_id, case.id)

    assert RefusalKind.NOT_OWNER == refused.value.refusal.kind
    assert (None, "awaiting-decision", 4) == (unwritten, after_refusal.stage, after_refusal.last_step)
    assert decision_row is not None and ("hana", 5) == (decision_row.operator, run.last_step)
    assert "delivering" == decided.next_stage


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
        hana = kit.operator("hana", HOSTS)
        request = DecisionRequest(
            case_id=case.id,
            decision=DecisionKind.REJECT,
            operator=hana.name,
            operator_groups=hana.groups,
            reason="the guest cancelled",
        )
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
