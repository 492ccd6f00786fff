"""Look-ups and stage changes run as local activities (`LOCAL_ACTIVITIES`), one local activity of a run at a time.

Local activities in flight together are resumed in their order of completion but replayed in their order of
scheduling (temporalio/sdk-python#1578), so a decision's `verify_decision` that arrives while the look-ups run must
wait its turn: otherwise another worker taking the run over could replay it another way than it ran.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from handoff import Handoffs, Lookup
from handoff.schemas.activities import DELIVER, RUN_LOOKUPS, VERIFY_DECISION
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import Stage
from handoff.workers.decisions import DecisionRefused
from handoff.workers.testkit import running_handoffs
from handoff.workers.trigger import trigger
from handoff.workflows.steps import DECISIONS_RECORDED_WHEN_VERIFIED
from tests.runtime.test_nested_lookups import Pos  # an in-memory POS: delivery is faked at the adapter boundary
from tests.workflows.sample_contracts import GROUPS, ready_contract

LOOKUP_SECONDS = 0.5
VERIFY_SECONDS = 0.3
TABLE_EXISTS = Lookup(check="pos.table_exists", field="booking.table", reason="The POS must know the table.")


class SlowPos:
    """A POS that takes its time to answer a look-up, long enough for a decision to arrive meanwhile; it notes when
    each look-up ran (monotonic seconds, this process: the worker runs in it)."""

    def __init__(self) -> None:
        self.asked: list[tuple[float, float]] = []

    async def table_exists(self, table: str) -> bool:
        started = time.monotonic()
        await asyncio.sleep(LOOKUP_SECONDS)
        self.asked.append((started, time.monotonic()))
        return table.startswith("T")


@pytest.fixture
def pos() -> SlowPos:
    return SlowPos()


@pytest.fixture
def app(pos: SlowPos) -> Handoffs:
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(rules=(TABLE_EXISTS,)),))
    app.source("bookings")
    app.system("pos", Pos())
    app.lookup("pos.table_exists")(pos.table_exists)
    return app


@contextmanager
def slow_operator_reads() -> Iterator[list[tuple[float, float]]]:
    """Every ledger read of the operators table (`verify_decision` reads the decider's groups) made slow, and noted
    (monotonic start, end): slow enough to overlap the look-up if both ran at once."""
    reads: list[tuple[float, float]] = []

    def slowly(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM operators" in statement:
            started = time.monotonic()
            time.sleep(VERIFY_SECONDS)
            reads.append((started, time.monotonic()))

    event.listen(Engine, "before_cursor_execute", slowly)
    try:
        yield reads
    finally:
        event.remove(Engine, "before_cursor_execute", slowly)


def booking(ref: str) -> dict[str, Any]:
    return {"booking": {"id": ref, "party_size": 2, "channel": "web", "table": "T4"}, "guest": {"name": "Ada"}}


def _local_activities(history: WorkflowHistory) -> list[dict[str, Any]]:
    """The SDK's own record of each local activity (type, schedule and completion times), in history order."""
    return [
        json.loads(event.marker_recorded_event_attributes.details["data"].payloads[0].data)
        for event in history.events
        if event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]


def _scheduled(history: WorkflowHistory) -> list[str]:
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]


def _index(history: WorkflowHistory, field: str) -> int:
    return next(i for i, event in enumerate(history.events) if event.HasField(field))


async def test_a_clean_run_asks_the_look_ups_locally_and_schedules_only_its_delivery(
    client: Client, app: Handoffs, tmp_path: Path
) -> None:
    async with running_handoffs(client, app, tmp_path) as kit:
        accepted = await kit.send("booking.confirmed", booking(f"B-{uuid.uuid4().hex[:8]}"))
        result = await kit.result(accepted.workflow_id)
        history = await kit.client.get_workflow_handle(accepted.workflow_id).fetch_history()

    assert Stage.DELIVERED == result.stage
    assert [DELIVER] == _scheduled(history)
    assert [RUN_LOOKUPS] == [local["activity_type"] for local in _local_activities(history)]
    patches = [
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for e in history.events
        if e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]
    assert [DECISIONS_RECORDED_WHEN_VERIFIED] == patches  # the one patch asked: it implies every patch before it


async def test_a_decision_arriving_while_the_look_ups_run_waits_its_turn_and_the_run_replays(
    client: Client, app: Handoffs, pos: SlowPos, tmp_path: Path
) -> None:
    """The decision comes with the run's first workflow task, so both local activities are asked in one activation:
    the decision is verified before the look-up runs or after it answered, never meanwhile, and a cold Replayer finds
    the same commands."""
    queue = f"local-turns-{uuid.uuid4().hex[:8]}"  # ids and queues of their own: the dev server is the session's
    async with running_handoffs(client, app, tmp_path, task_queue=f"{queue}-edge") as edge:
        edge.operator("hana", ("hosts",))
        # No worker polls `queue` yet: the run's first workflow task waits, and the decision reaches it with it.
        accepted = await trigger(
            edge.client, app.catalog, "booking.confirmed", booking(f"B-{uuid.uuid4().hex[:8]}"), task_queue=queue
        )
        deciding = asyncio.create_task(
            edge.decide(accepted.workflow_id, "C-none", DecisionKind.APPROVE, operator="hana", groups=("hosts",))
        )
        await asyncio.sleep(1)
        with slow_operator_reads() as reads:
            async with running_handoffs(client, app, tmp_path, task_queue=queue) as kit:
                with pytest.raises(DecisionRefused, match="Unknown case"):  # refused, after its verification
                    await deciding
                result = await kit.result(accepted.workflow_id)
                history = await kit.client.get_workflow_handle(accepted.workflow_id).fetch_history()

    assert Stage.DELIVERED == result.stage
    accepted_at = _index(history, "workflow_execution_update_accepted_event_attributes")
    tasks_started = [i for i, e in enumerate(history.events) if e.HasField("workflow_task_started_event_attributes")]
    assert tasks_started[0] < accepted_at < tasks_started[1], "the decision did not come with the first task"
    assert {RUN_LOOKUPS, VERIFY_DECISION} == {local["activity_type"] for local in _local_activities(history)}
    [(asked, answered)] = pos.asked
    assert reads, "verify_decision read no operator"
    overlapping = [(start, end) for start, end in reads if start < answered and end > asked]
    assert [] == overlapping, "the decision was verified while the look-up ran"

    replayer = Replayer(workflows=[], plugins=[app.plugin(ledger=kit.ledger, decision_key=kit.decision_key)])
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert None is replayed.replay_failure
