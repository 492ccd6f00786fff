"""A decision is recorded by its verification (`DECISIONS_RECORDED_WHEN_VERIFIED`): one local activity, not two.

The run judges a decision on everything but the operator's groups, then `verify_decision` checks the attestation and
that the operator is in the case's owner group, and records the decision's stage change in the ledger. These tests
hold the ledger to what the run enters for each kind of decision, and follow the ways it can go otherwise: a write
that fails (the run writes it), an operator outside the owner group (nothing written). Two more, slow, have files of
their own: a verification that fails (test_decision_verification_fails.py) and an SLA that passes while a decision is
being verified (test_decision_turns.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, select
from structlog.testing import CapturingLogger
from temporalio.client import Client, WorkflowHistory

from handoff import Handoffs
from handoff.activities import authorisation
from handoff.activities.ledger.tables import CaseRow, DecisionRow, RunRow
from handoff.schemas.activities import RECORD_STAGE_CHANGE, VERIFY_DECISION
from handoff.schemas.cases import DecisionRequest, RefusalKind
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import Stage
from handoff.workers.codec import decoded_history
from handoff.workers.decisions import DecisionRefused
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.runtime.test_nested_lookups import Pos  # an in-memory POS: delivery is faked at the adapter boundary
from tests.workflows.sample_contracts import GROUPS, ready_contract

HOSTS = ("hosts",)


def sample_app() -> Handoffs:
    """The sample contract's app; bad data opens a case that the hosts own, escalated to the managers."""
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(),))
    app.source("bookings")
    app.system("pos", Pos())
    return app


@pytest.fixture
def app() -> Handoffs:
    return sample_app()


def without_party_size() -> dict[str, Any]:
    """Bad data for the sample contract: the POS sizes the table from the party, which is missing."""
    return {"booking": {"id": f"B-{uuid.uuid4().hex[:8]}", "channel": "web"}, "guest": {"name": "Ada"}}


def local_activities(history: WorkflowHistory) -> list[str]:
    return [
        json.loads(event.marker_recorded_event_attributes.details["data"].payloads[0].data)["activity_type"]
        for event in history.events
        if event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]


async def decoded(kit: HandoffKit, workflow_id: str) -> WorkflowHistory:
    """The run's history with its payloads decrypted (the worker encrypts what it writes there)."""
    history = await kit.client.get_workflow_handle(workflow_id).fetch_history()
    codec = kit.client.data_converter.payload_codec
    assert codec is not None
    return await decoded_history(history, codec)


def local_results(history: WorkflowHistory, activity_type: str) -> list[bytes]:
    """What each local activity of `activity_type` answered, as its marker keeps it."""
    return [
        event.marker_recorded_event_attributes.details["result"].payloads[0].data
        for event in history.events
        if event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        and json.loads(event.marker_recorded_event_attributes.details["data"].payloads[0].data)["activity_type"]
        == activity_type
    ]


def ledger_rows(ledger: Engine, workflow_id: str, case_id: str) -> tuple[RunRow, CaseRow, DecisionRow | None]:
    with Session(ledger) as session:
        run = session.get(RunRow, workflow_id)
        case = session.get(CaseRow, case_id)
        decision = session.exec(select(DecisionRow).where(DecisionRow.case_id == case_id)).first()
    assert run is not None and case is not None
    return run, case, decision


def hanas(kit: HandoffKit, case_id: str, decision: DecisionKind) -> DecisionRequest:
    """Hana's decision, Hana in the ledger already: to send with `decide` while the tests tamper with the ledger's
    operator reads (the kit's own `decide` reads the ledger first)."""
    hana = kit.operator("hana", HOSTS)
    return DecisionRequest(
        case_id=case_id, decision=decision, operator=hana.name, operator_groups=hana.groups, reason="as agreed"
    )


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
        _, _, decision_row = ledger_rows(kit.ledger, accepted.workflow_id, case.id)  # no later write adds one
        result = await kit.result(accepted.workflow_id)
        run, case_row, _ = ledger_rows(kit.ledger, accepted.workflow_id, case.id)
        history = await decoded(kit, accepted.workflow_id)

    assert next_stage.value == decided.next_stage
    [verdict] = [json.loads(answer) for answer in local_results(history, VERIFY_DECISION)]
    assert (True, ["hosts"]) == (verdict["recorded"], verdict["operator_groups"])
    assert (result.stage.value, override) == (run.stage, run.override)
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
    client: Client, app: Handoffs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger refuses the verification's write once: the decision is still taken, and the run records it itself
    before `decide` answers, in a local activity of its own."""
    failed: list[str] = []

    def fail_once(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO decisions") and not failed:
            failed.append(statement)
            raise RuntimeError("the ledger is busy")

    logs = CapturingLogger()  # structlog caches its loggers: `capture_logs` misses a cached one
    monkeypatch.setattr(authorisation, "log", logs)
    async with running_handoffs(client, app, tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", without_party_size())
        case = await kit.open_case(accepted.workflow_id)
        event.listen(Engine, "before_cursor_execute", fail_once)
        try:
            decided = await kit.decide(
                accepted.workflow_id, case.id, DecisionKind.APPROVE, operator="hana", groups=HOSTS
            )
        finally:
            event.remove(Engine, "before_cursor_execute", fail_once)
        run, _, decision_row = ledger_rows(kit.ledger, accepted.workflow_id, case.id)
        result = await kit.result(accepted.workflow_id)
        history = await decoded(kit, accepted.workflow_id)

    assert failed, "the verification wrote no decision"
    [verdict] = [json.loads(answer) for answer in local_results(history, VERIFY_DECISION)]
    assert False is verdict["recorded"]
    assert ["decision.unrecorded"] == [call.args[0] for call in logs.calls if call.method_name == "warning"]
    assert decision_row is not None and "approve" == decision_row.decision  # in the ledger when decide answered
    assert ("delivering", Stage.DELIVERED) == (decided.next_stage, result.stage)
    assert 3 <= run.last_step
    assert [RECORD_STAGE_CHANGE, VERIFY_DECISION, RECORD_STAGE_CHANGE] == local_activities(history)


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
        assert Stage.DELIVERED == (await kit.result(accepted.workflow_id)).stage
        run, _, decision_row = ledger_rows(kit.ledger, accepted.workflow_id, case.id)

    assert RefusalKind.NOT_OWNER == refused.value.refusal.kind
    assert (None, "awaiting-decision", 4) == (unwritten, after_refusal.stage, after_refusal.last_step)
    # 3 handed to the verification and never used, 4 written back with the refusal, 5 the decision, 6 delivered.
    assert decision_row is not None and ("hana", 6) == (decision_row.operator, run.last_step)
    assert "delivering" == decided.next_stage
