"""Scheduled handoffs on the real dev server: `handoff schedules sync` makes the contract's schedule a Temporal
Schedule, a firing starts a run with the registered function's payload (checked at the edge like any event), a second
sync changes nothing, a changed schedule is updated, and a trigger without its schedule deletes it.

The POS here is a test adapter (the adapter boundary is where a fake belongs): it records what it was written.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, ScheduleActionExecutionStartWorkflow, ScheduleHandle, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from handoff import Handoffs, WriteOutcome
from handoff.schemas.contract import HandoffContract, Schedule, Trigger
from handoff.schemas.runs import Stage
from handoff.workers.schedules import sync_schedules
from handoff.workers.testkit import running_handoffs
from tests.workers.cli_runner import cli_env, handoff
from tests.workflows.sample_contracts import GROUPS, BookingConfirmed, ready_contract

HANDOFF = "nightly-bookings"
SCHEDULE_ID = f"handoff/{HANDOFF}"
MODULE = "tests.workers.test_schedules"


class RecordingPos:
    """Takes every record and keeps it by record key (the run's workflow id)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        if record_key in self.records:
            return WriteOutcome.ALREADY_WRITTEN
        self.records[record_key] = dict(fields)
        return WriteOutcome.WRITTEN


POS = RecordingPos()
FIRED: list[datetime] = []
"""Every firing time the scheduled function was called with."""


def _contract(schedule: Schedule | None) -> HandoffContract:
    trigger = Trigger(event="booking.confirmed", payload=BookingConfirmed, dedupe_key="booking.id", schedule=schedule)
    return ready_contract(name=HANDOFF, trigger=trigger)


def _app(schedule: Schedule | None) -> Handoffs:
    app = Handoffs(groups=GROUPS, contracts=(_contract(schedule),))
    app.source("bookings")
    app.system("pos", POS)

    @app.scheduled("closed_bookings")
    def closed_bookings(fired_at: datetime) -> dict[str, Any]:
        FIRED.append(fired_at)
        return {"booking": {"id": f"N-{fired_at:%Y%m%d%H%M%S}", "party_size": 4}, "guest": {"name": "Ada"}}

    return app


# `--app tests.workers.test_schedules:<name>`: the same handoff with its schedule as written, changed, and removed.
APP = _app(Schedule(cron="0 6 * * *", source="closed_bookings"))
RESCHEDULED = _app(Schedule(cron="30 6 * * *", source="closed_bookings"))
UNSCHEDULED = _app(None)
MISNAMED = _app(Schedule(cron="0 6 * * *", source="closed_booking"))


async def _sync(env: dict[str, str], app: str) -> str:
    result = await handoff(env, "schedules", "sync", "--app", f"{MODULE}:{app}")
    assert 0 == result.exit_code, result.stdout + result.stderr
    return result.stdout


async def _delivered_record(pos: RecordingPos, timeout: float = 15) -> str:
    """The workflow id of the one record the POS was written, once it was."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not pos.records:
        assert asyncio.get_running_loop().time() < deadline, f"no scheduled run reached the POS within {timeout}s"
        await asyncio.sleep(0.1)
    [workflow_id] = pos.records
    return workflow_id


async def _listed(client: Client, schedule_id: str, timeout: float = 10) -> None:
    """Wait until Temporal's visibility (about a second behind) lists the schedule, as a later sync reads it."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not [s async for s in await client.list_schedules() if s.id == schedule_id]:
        assert asyncio.get_running_loop().time() < deadline, f"{schedule_id} was never listed"
        await asyncio.sleep(0.2)


async def test_schedules_sync_creates_fires_updates_and_deletes_the_schedule(
    client: Client, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The acceptance path: create, fire with the source's payload, change nothing, update, delete."""
    async with running_handoffs(client, APP, tmp_path) as kit:
        env = cli_env(kit, temporal_env.client.service_client.config.target_host)

        refused = await handoff(env, "schedules", "sync", "--app", f"{MODULE}:MISNAMED")
        created = await _sync(env, "APP")
        again = await _sync(env, "APP")
        listed = await handoff(env, "schedules", "--json", "--app", f"{MODULE}:APP")

        assert 1 == refused.exit_code and "no schedule was changed" in refused.stderr
        assert "[unknown-schedule-source]" in refused.stderr and "@app.scheduled('closed_booking')" in refused.stderr
        assert f"created {SCHEDULE_ID}" in created  # so the refused sync had created nothing
        assert "Nothing changed: 1 schedule(s) already match the app." in again
        [row] = json.loads(listed.stdout)
        assert (SCHEDULE_ID, "cron 0 6 * * *", "in sync") == (row["id"], row["spec"], row["status"])
        assert row["next_run"] is not None and "06:00:00" in row["next_run"]

        await kit.client.get_schedule_handle(SCHEDULE_ID).trigger()
        workflow_id = await _delivered_record(POS)
        result = await kit.result(workflow_id)

        [fired_at] = FIRED
        assert f"{HANDOFF}/N-{fired_at:%Y%m%d%H%M%S}" == workflow_id  # the dedupe key of the source's payload
        assert Stage.DELIVERED == result.stage
        assert {"booking_ref": f"N-{fired_at:%Y%m%d%H%M%S}", "booking_party_size": 4, "guest_name": "Ada"} == (
            POS.records[workflow_id]
        )

        await kit.client.get_schedule_handle(SCHEDULE_ID).pause(note="POS maintenance")
        updated = await _sync(env, "RESCHEDULED")
        description = await kit.client.get_schedule_handle(SCHEDULE_ID).describe()
        assert f"updated {SCHEDULE_ID}" in updated
        assert 30 == description.info.next_action_times[0].minute
        # A contract change does not undo an operator's pause.
        assert (True, "POS maintenance") == (description.schedule.state.paused, description.schedule.state.note)

        await _listed(kit.client, SCHEDULE_ID)
        deleted = await _sync(env, "UNSCHEDULED")
        assert f"deleted {SCHEDULE_ID}" in deleted
        try:
            await kit.client.get_schedule_handle(SCHEDULE_ID).describe()
            raise AssertionError(f"{SCHEDULE_ID} is still there after its trigger lost the schedule")
        except RPCError as error:
            assert RPCStatusCode.NOT_FOUND == error.status
        assert "Nothing changed: 0 schedule(s)" in await _sync(env, "UNSCHEDULED")


async def test_a_firing_starts_one_run_per_payload_and_fails_naming_the_payload_the_edge_refuses(
    client: Client, tmp_path: Path
) -> None:
    """A list is one run per payload; a payload that does not fit the trigger's model starts nothing, and the
    firing fails (not retried) saying which field was wrong, while the good payload's run is delivered."""
    pos = RecordingPos()
    app = Handoffs(groups=GROUPS, contracts=(_contract(Schedule(every=timedelta(days=365), source="mixed")),))
    app.source("bookings")
    app.system("pos", pos)

    @app.scheduled("mixed")
    async def mixed(fired_at: datetime) -> list[dict[str, Any]]:
        good = {"booking": {"id": f"M-{fired_at:%H%M%S}", "party_size": 2}, "guest": {"name": "Bo"}}
        return [good, {"booking": {"party_size": "many"}, "guest": {}}]

    async with running_handoffs(client, app, tmp_path) as kit:
        report = await sync_schedules(kit.client, app.catalog, task_queue=kit.settings.task_queue)
        handle = kit.client.get_schedule_handle(SCHEDULE_ID)
        try:
            await handle.trigger()
            firing = await _first_firing(handle)
            try:
                await kit.client.get_workflow_handle(firing).result()
                raise AssertionError("a firing with a refused payload succeeded")
            except WorkflowFailureError as failure:
                cause = failure.cause.cause
            workflow_id = await _delivered_record(pos)
            result = await kit.result(workflow_id)
        finally:
            await handle.delete()

    assert [SCHEDULE_ID] == report.created
    assert isinstance(cause, ApplicationError) and ("PayloadInvalid", True) == (cause.type, cause.non_retryable)
    assert "started 1 run(s) and refused 1 payload(s) from 'mixed'" in cause.message
    assert "booking.id: Field required" in cause.message
    assert "booking.party_size: Input should be a valid integer" in cause.message
    assert Stage.DELIVERED == result.stage and workflow_id.startswith(f"{HANDOFF}/M-")


async def _first_firing(handle: ScheduleHandle, timeout: float = 10) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        description = await handle.describe()
        if description.info.recent_actions:
            action = description.info.recent_actions[0].action
            assert isinstance(action, ScheduleActionExecutionStartWorkflow)
            return action.workflow_id
        assert asyncio.get_running_loop().time() < deadline, "the schedule never fired"
        await asyncio.sleep(0.1)
