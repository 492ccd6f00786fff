"""Ordered deliveries with compensation: a contract that orders its targets writes them one at a time, and when one
refuses the record, the writes made before it are undone last first, once each, and the case says what was undone.

The target systems are file-backed fakes at the adapter boundary (`compensation_app.py`): their log holds only the
writes and undos that changed something, so "undone once" is read there, across killed processes too.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from handoff.activities.ledger.database import make_engine
from handoff.activities.ledger.tables import DeliveryRow, ViolationRow
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import HandoffStatus, Stage
from handoff.workers.testkit import HandoffKit, running_handoffs
from handoff.workers.trigger import trigger
from tests.runtime.compensation_app import (
    SYSTEMS_FILE_VARIABLE,
    SystemsFile,
    UnanswerableUndo,
    build_app,
)
from tests.runtime.processes import handoff_env, handoff_process

HOSTS = ("hosts",)
WROTE_ALL = [("crm", "write"), ("pos", "write"), ("kitchen", "write")]


def _booking() -> dict[str, Any]:
    return {"booking": {"id": f"B-{uuid.uuid4().hex[:8]}", "party_size": 2}, "guest": {"name": "Ada"}}


def _undone_at(ledger: Any, workflow_id: str) -> dict[str, bool]:
    """System -> whether the ledger marks the run's write to it undone."""
    with Session(ledger) as session:
        rows = session.exec(select(DeliveryRow).where(DeliveryRow.workflow_id == workflow_id)).all()
    return {row.system: row.undone_at is not None for row in rows}


def _recorded_reason(kit: HandoffKit, case_id: str) -> str:
    with Session(kit.ledger) as session:
        [row] = session.exec(select(ViolationRow).where(ViolationRow.case_id == case_id)).all()
    return row.reason


async def test_the_third_target_refusing_undoes_the_first_two_once_each_last_first_and_a_retry_writes_all_three(
    client: Client, tmp_path: Path
) -> None:
    """crm and pos took the record, the kitchen refused: pos then crm are undone, once; the case says so; the ledger
    marks both undone; after the kitchen is fixed, a retry writes all three again, in order."""
    systems = SystemsFile(tmp_path / "systems.db")
    systems.refuse("kitchen")
    async with running_handoffs(client, build_app(systems), tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", _booking())
        case = await kit.open_case(accepted.workflow_id)

        assert [("crm", "write"), ("pos", "write"), ("pos", "undo"), ("crm", "undo")] == systems.log()
        [violation] = case.violations
        assert ("delivery", "kitchen accepts booking_party_size") == (violation.kind, violation.rule)
        assert violation.reason.endswith("; undone: pos, crm"), violation.reason
        assert "a party the kitchen can cook for" in violation.reason
        assert violation.reason == _recorded_reason(kit, case.id)
        assert {"crm": True, "pos": True} == _undone_at(kit.ledger, accepted.workflow_id)
        assert [] == (await kit.status(accepted.workflow_id)).deliveries
        assert ([], []) == (systems.holds("crm"), systems.holds("pos"))

        systems.refuse("kitchen", refusing=False)
        decided = await kit.decide(accepted.workflow_id, case.id, DecisionKind.RETRY, operator="ana", groups=HOSTS)
        result = await kit.result(accepted.workflow_id)

    assert Stage.DELIVERING.value == decided.next_stage
    assert Stage.DELIVERED == result.stage
    assert WROTE_ALL == systems.log()[4:]  # each written once more, in order; nothing undone again
    assert ["crm", "pos", "kitchen"] == [delivery.system for delivery in result.deliveries]
    assert {"crm": False, "pos": False, "kitchen": False} == _undone_at(kit.ledger, accepted.workflow_id)
    assert [accepted.workflow_id] * 3 == [*systems.holds("crm"), *systems.holds("pos"), *systems.holds("kitchen")]


async def test_a_target_without_undo_keeps_its_write_and_the_case_says_which_stayed(
    client: Client, tmp_path: Path
) -> None:
    """pos declares no undo: only crm is undone; the case names pos as still written, and a retry does not write pos
    twice."""
    systems = SystemsFile(tmp_path / "systems.db")
    systems.refuse("kitchen")
    app = build_app(systems, undo={"crm": "cancel"})
    async with running_handoffs(client, app, tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", _booking())
        case = await kit.open_case(accepted.workflow_id)

        assert [("crm", "write"), ("pos", "write"), ("crm", "undo")] == systems.log()
        [violation] = case.violations
        assert violation.reason.endswith("; undone: crm; still written: pos (it declares no undo)"), violation.reason
        assert {"crm": True, "pos": False} == _undone_at(kit.ledger, accepted.workflow_id)
        assert ["pos"] == [delivery.system for delivery in (await kit.status(accepted.workflow_id)).deliveries]

        # The kitchen still refuses: the second round undoes crm again, and says pos is still written.
        await kit.decide(accepted.workflow_id, case.id, DecisionKind.RETRY, operator="ana", groups=HOSTS)
        second = await kit.wait_for(
            accepted.workflow_id,
            lambda status: len(status.cases) == 2 and status.stage is Stage.AWAITING_DECISION,
            what="a second case",
        )
        reason = second.cases[1].violations[0].reason
        assert reason.endswith("; undone: crm; still written: pos (written before, not undone)"), reason
        assert [("crm", "write"), ("crm", "undo")] == systems.log()[3:]

        systems.refuse("kitchen", refusing=False)
        await kit.decide(accepted.workflow_id, second.cases[1].id, DecisionKind.RETRY, operator="ana", groups=HOSTS)
        result = await kit.result(accepted.workflow_id)

    assert Stage.DELIVERED == result.stage
    assert [("crm", "write"), ("kitchen", "write")] == systems.log()[5:]
    assert ["pos", "crm", "kitchen"] == [delivery.system for delivery in result.deliveries]


async def test_an_undo_that_never_answers_leaves_the_write_and_the_case_says_why(
    client: Client, tmp_path: Path
) -> None:
    """crm's undo fails each of its attempts: its write stays (not marked undone), and the case gives the error."""
    systems = SystemsFile(tmp_path / "systems.db")
    systems.refuse("kitchen")
    app = build_app(systems, adapters={"crm": UnanswerableUndo("crm", systems)})
    async with running_handoffs(client, app, tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", _booking())
        case = await kit.open_case(accepted.workflow_id, timeout=30)
        status = await kit.status(accepted.workflow_id)

    [violation] = case.violations
    assert "; undone: pos; still written: crm (its undo failed after 2 attempt(s)" in violation.reason
    assert "the crm system is not answering" in violation.reason
    assert [("crm", "write"), ("pos", "write"), ("pos", "undo")] == systems.log()
    assert {"crm": False, "pos": True} == _undone_at(kit.ledger, accepted.workflow_id)
    assert ["crm"] == [delivery.system for delivery in status.deliveries]


async def test_a_rejected_run_keeps_what_was_undone_undone(client: Client, tmp_path: Path) -> None:
    """Rejecting the case ends the run: nothing is written again, and the undone writes stay undone."""
    systems = SystemsFile(tmp_path / "systems.db")
    systems.refuse("kitchen")
    async with running_handoffs(client, build_app(systems), tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", _booking())
        case = await kit.open_case(accepted.workflow_id)
        await kit.decide(accepted.workflow_id, case.id, DecisionKind.REJECT, operator="ana", groups=HOSTS)
        result = await kit.result(accepted.workflow_id)

    assert (Stage.REJECTED, []) == (result.stage, result.deliveries)
    assert [("crm", "write"), ("pos", "write"), ("pos", "undo"), ("crm", "undo")] == systems.log()


async def _status(client: Client, workflow_id: str) -> HandoffStatus | None:
    try:
        status: HandoffStatus = await client.get_workflow_handle(workflow_id).query("status", result_type=HandoffStatus)
    except Exception:  # the run's first workflow task may not have completed yet
        return None
    return status


async def test_a_worker_killed_during_the_undo_leaves_each_write_undone_exactly_once(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """SIGKILL the worker after pos's undo but before it was acknowledged; the next worker retries that undo (which
    finds nothing left to undo), undoes crm, and opens the case: each undone once."""
    client = temporal_env.client
    queue = f"compensation-{uuid.uuid4().hex[:8]}"
    systems = SystemsFile(tmp_path / "systems.db")
    systems.refuse("kitchen")
    address = client.service_client.config.target_host
    app = "tests.runtime.compensation_app:app"
    slow = handoff_env(tmp_path, address, queue, app=app, delivery_pause_seconds="2", sla_scale="1000")
    slow[SYSTEMS_FILE_VARIABLE] = str(systems.path)
    accepted = await trigger(client, build_app(systems).catalog, "booking.confirmed", _booking(), task_queue=queue)

    with handoff_process(["worker"], slow, tmp_path / "worker-1.log") as first:
        for _ in range(600):
            if ("pos", "undo") in systems.log():
                break
            await asyncio.sleep(0.05)
        assert [("crm", "write"), ("pos", "write"), ("pos", "undo")] == systems.log()
        first.send_signal(signal.SIGKILL)  # within pos's undo's 2 s pause: undone, not acknowledged
        first.wait(timeout=10)
    ledger = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert {"crm": False, "pos": False} == _undone_at(ledger, accepted.workflow_id)  # the kill came before the mark

    fast = {**slow, "HANDOFF_DELIVERY_PAUSE_SECONDS": "0"}
    with handoff_process(["worker"], fast, tmp_path / "worker-2.log"):
        status = None
        for _ in range(600):
            status = await _status(client, accepted.workflow_id)
            if status is not None and status.stage is Stage.AWAITING_DECISION:
                break
            await asyncio.sleep(0.1)

    assert status is not None and Stage.AWAITING_DECISION == status.stage
    assert [("crm", "write"), ("pos", "write"), ("pos", "undo"), ("crm", "undo")] == systems.log()
    assert status.cases[0].violations[0].reason.endswith("; undone: pos, crm")
    assert {"crm": True, "pos": True} == _undone_at(ledger, accepted.workflow_id)
    ledger.dispose()
