"""Scheduled handoffs: each contract's `Schedule` as a Temporal Schedule, kept in step with the app.

    report = await sync_schedules(client, app.catalog, task_queue="handoffs")   # `handoff schedules sync`

A contract with `Trigger(schedule=Schedule(...))` gets the Temporal Schedule `handoff/<handoff>`. Its action starts
the firing workflow (`handoff.workflows.schedules`), whose activity calls `fire`: the app's scheduled function gives
the payloads, and each starts a run through `handoff.workers.trigger`, so a scheduled payload meets the same checks
and dedupe as an event. Sync creates what is missing, updates what changed (keeping a schedule's paused state and
note), and deletes `handoff/...` schedules on the same task queue whose contract no longer has a schedule. What
"changed" means is a fingerprint of the schedule as the contract says it, kept in the action's memo: Temporal hands
a cron back as calendars, so comparing specs would see a change every time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from handoff.schemas.contract import Catalog, HandoffContract, Overlap
from handoff.schemas.contract import Schedule as ContractSchedule
from handoff.schemas.schedules import SCHEDULE_WORKFLOW, FireRequest, ScheduleFired, ScheduleFiring
from handoff.workers.trigger import PayloadInvalid, trigger
from handoff.workflows.schedules import ScheduleWorkflow

if TYPE_CHECKING:
    from handoff.workers.app import Handoffs

PREFIX = "handoff/"
"""Every schedule sync manages has an id `handoff/<handoff>`; others in the namespace are never touched."""
FINGERPRINT = "handoff-schedule"
"""The action memo key holding what the schedule was made from."""
NOTE = "Managed by `handoff schedules sync`: change the contract's schedule, not this one."

_OVERLAP = {
    Overlap.SKIP: ScheduleOverlapPolicy.SKIP,
    Overlap.BUFFER_ONE: ScheduleOverlapPolicy.BUFFER_ONE,
    Overlap.BUFFER_ALL: ScheduleOverlapPolicy.BUFFER_ALL,
    Overlap.CANCEL_OTHER: ScheduleOverlapPolicy.CANCEL_OTHER,
    Overlap.TERMINATE_OTHER: ScheduleOverlapPolicy.TERMINATE_OTHER,
    Overlap.ALLOW_ALL: ScheduleOverlapPolicy.ALLOW_ALL,
}


class SyncReport(BaseModel):
    """What one sync did, by schedule id."""

    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


class ScheduleRow(BaseModel):
    """One schedule as `handoff schedules` lists it: the app's view beside Temporal's."""

    id: str
    handoff: str
    spec: str
    """The clock as the contract says it ('cron 0 6 * * *', 'every 0:15:00'); '-' for a schedule the app dropped."""
    status: str
    """in sync · missing (not synced yet) · out of date (the contract changed) · paused · not in the app"""
    next_run: datetime | None = None


def schedule_id(handoff: str) -> str:
    return f"{PREFIX}{handoff}"


def scheduled_contracts(catalog: Catalog) -> dict[str, HandoffContract]:
    """Schedule id -> each contract whose trigger has a schedule."""
    return {
        schedule_id(contract.name): contract
        for contract in catalog.contracts
        if contract.trigger is not None and contract.trigger.schedule is not None
    }


def fingerprint(contract: HandoffContract, task_queue: str) -> str:
    """What the Temporal Schedule is made from: the contract's schedule, its event, and the task queue."""
    schedule = _schedule_of(contract)
    said = {
        "handoff": contract.name,
        "schedule": schedule.model_dump(mode="json"),
        "task_queue": task_queue,
        "workflow": SCHEDULE_WORKFLOW,
    }
    return hashlib.sha256(json.dumps(said, sort_keys=True).encode()).hexdigest()[:16]


def temporal_schedule(contract: HandoffContract, task_queue: str) -> Schedule:
    """The Temporal Schedule for a contract's schedule, starting its firings on `task_queue`."""
    schedule = _schedule_of(contract)
    assert schedule.source is not None, "the readiness gate refuses a schedule without a source"
    if schedule.cron is not None:
        spec = ScheduleSpec(cron_expressions=[schedule.cron])
    else:
        assert schedule.every is not None
        spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=schedule.every)])
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ScheduleWorkflow.run,
            ScheduleFiring(handoff=contract.name, source=schedule.source),
            id=f"{schedule_id(contract.name)}/firing",
            task_queue=task_queue,
            memo={FINGERPRINT: fingerprint(contract, task_queue)},
            static_summary=f"{contract.name}: scheduled, payload from {schedule.source}",
        ),
        spec=spec,
        policy=SchedulePolicy(overlap=_OVERLAP[schedule.overlap], catchup_window=schedule.catchup_window),
        state=ScheduleState(note=NOTE),
    )


async def sync_schedules(client: Client, catalog: Catalog, *, task_queue: str) -> SyncReport:
    """Make Temporal's `handoff/...` schedules on `task_queue` match the catalog's; idempotent.

    Check the catalog first (`Handoffs.readiness`): a schedule the gate refuses is not one Temporal can take.
    """
    report = SyncReport()
    wanted = scheduled_contracts(catalog)
    for sid, contract in wanted.items():
        desired = temporal_schedule(contract, task_queue)
        description = await _described(client, sid)
        if description is None:
            await client.create_schedule(sid, desired)
            report.created.append(sid)
        elif await _fingerprint_of(client, description) == fingerprint(contract, task_queue):
            report.unchanged.append(sid)
        else:

            def keep_state(update: ScheduleUpdateInput, desired: Schedule = desired) -> ScheduleUpdate:
                # Pausing is an operator's call (with a note saying why): a contract change does not undo it.
                return ScheduleUpdate(schedule=dataclasses.replace(desired, state=update.description.schedule.state))

            await client.get_schedule_handle(sid).update(keep_state)
            report.updated.append(sid)
    for sid in await _ours_not_wanted(client, wanted, task_queue):
        await client.get_schedule_handle(sid).delete()
        report.deleted.append(sid)
    return report


async def schedule_rows(client: Client, catalog: Catalog, *, task_queue: str) -> list[ScheduleRow]:
    """The app's schedules as Temporal has them, then Temporal's `handoff/...` schedules the app no longer has."""
    rows = []
    wanted = scheduled_contracts(catalog)
    for sid, contract in wanted.items():
        description = await _described(client, sid)
        status, next_run = "missing", None
        if description is not None:
            same = await _fingerprint_of(client, description) == fingerprint(contract, task_queue)
            status = "paused" if description.schedule.state.paused else ("in sync" if same else "out of date")
            next_run = next(iter(description.info.next_action_times), None)
        rows.append(ScheduleRow(id=sid, handoff=contract.name, spec=_spec(contract), status=status, next_run=next_run))
    for sid in await _ours_not_wanted(client, wanted, task_queue):
        rows.append(ScheduleRow(id=sid, handoff=sid.removeprefix(PREFIX), spec="-", status="not in the app"))
    return rows


def starter(app: Handoffs, *, sla_scale: float = 1.0) -> Callable[[Client, FireRequest, str], Awaitable[ScheduleFired]]:
    """What the firing activity calls (`activities.schedules`): `fire` for this app."""

    async def start(client: Client, request: FireRequest, task_queue: str) -> ScheduleFired:
        return await fire(client, app, request, task_queue=task_queue, sla_scale=sla_scale)

    return start


async def fire(
    client: Client, app: Handoffs, request: FireRequest, *, task_queue: str, sla_scale: float = 1.0
) -> ScheduleFired:
    """Start a run for each payload the scheduled function returns, through the edge as an event would.

    Raises:
        ApplicationError: (not retryable) the handoff has no trigger any more, or some payload was refused: the
            others were started, and the message names each refusal.
    """
    try:
        contract = app.catalog.contract(request.handoff)
    except KeyError as error:
        raise ApplicationError(
            f"{error.args[0]}: run `handoff schedules sync` to delete its schedule",
            type="UnknownEvent",
            non_retryable=True,
        ) from None
    if contract.trigger is None:
        raise ApplicationError(f"{contract.name} has no trigger any more", type="UnknownEvent", non_retryable=True)
    event = contract.trigger.event
    fired = ScheduleFired()
    refused = []
    for payload in await app.scheduled_payloads(request.source, request.fired_at):
        if not isinstance(payload, Mapping):
            refused.append(f"'{request.source}' returned a {type(payload).__name__}, not a payload (a dict)")
            continue
        try:
            fired.runs.append(
                await trigger(client, app.catalog, event, payload, task_queue=task_queue, sla_scale=sla_scale)
            )
        except PayloadInvalid as invalid:
            refused.append(str(invalid))
    if refused:
        raise ApplicationError(
            f"{contract.name}: the schedule's firing at {request.fired_at:%Y-%m-%d %H:%M:%S} started "
            f"{len(fired.runs)} run(s) and refused {len(refused)} payload(s) from '{request.source}': "
            + " | ".join(refused),
            type="PayloadInvalid",
            non_retryable=True,
        )
    return fired


def _schedule_of(contract: HandoffContract) -> ContractSchedule:
    assert contract.trigger is not None and contract.trigger.schedule is not None
    return contract.trigger.schedule


def _spec(contract: HandoffContract) -> str:
    schedule = _schedule_of(contract)
    return f"cron {schedule.cron}" if schedule.cron is not None else f"every {schedule.every}"


async def _described(client: Client, sid: str) -> ScheduleDescription | None:
    try:
        return await client.get_schedule_handle(sid).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def _fingerprint_of(client: Client, description: ScheduleDescription) -> str | None:
    action = description.schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow) or not action.memo or FINGERPRINT not in action.memo:
        return None
    raw = action.memo[FINGERPRINT]
    if isinstance(raw, str):
        return raw
    [value] = await client.data_converter.decode([raw], [str])
    return str(value)


async def _ours_not_wanted(client: Client, wanted: Mapping[str, HandoffContract], task_queue: str) -> list[str]:
    """`handoff/...` schedules that start firings on `task_queue` for no scheduled contract of the catalog.

    The listing is Temporal's visibility (eventually consistent, about a second behind); each is described first.
    """
    found = []
    async for listed in await client.list_schedules():
        if not listed.id.startswith(PREFIX) or listed.id in wanted:
            continue
        description = await _described(client, listed.id)
        action = description.schedule.action if description is not None else None
        if (
            isinstance(action, ScheduleActionStartWorkflow)
            and action.workflow == SCHEDULE_WORKFLOW
            and action.task_queue == task_queue
        ):
            found.append(listed.id)
    return sorted(found)
