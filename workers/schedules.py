"""Scheduled handoffs: each contract's `Schedule` as a Temporal Schedule, kept in step with the app.

    report = await sync_schedules(client, app.catalog, task_queue="handoffs")   # `handoff schedules sync`

A contract with `Trigger(schedule=Schedule(...))` gets the Temporal Schedule `handoff/<handoff>`. Its action starts
the firing workflow (`handoff.workflows.schedules`), whose activity calls `fire`: the app's scheduled function gives
the payloads, and each starts a run through `handoff.workers.trigger`, so a scheduled payload meets the same checks
and dedupe as an event. Sync creates what is missing, updates what changed (keeping a schedule's paused state and
note), and deletes `handoff/...` schedules on the same task queue whose contract no longer has a schedule. What
"changed" means is a fingerprint of the schedule as the contract says it, kept in the action's memo: Temporal hands
a cron back as calendars, so comparing specs would see a change every time.

A contract whose sync has a `DriftCheck` gets a second schedule, `handoff/<handoff>/drift`, starting the drift check
workflow (`handoff.workflows.drift`) every `every`, synced the same way; its activity opens each drift case through
`open_drift_run`, a run of the handoff with `HandoffInput.drift`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
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
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from handoff.schemas.contract import Catalog, DriftCheck, HandoffContract, Overlap
from handoff.schemas.contract import Schedule as ContractSchedule
from handoff.schemas.drift import DRIFT_CHECK_WORKFLOW, DRIFT_EVENT, DriftCheckInput, DriftFinding
from handoff.schemas.runs import HandoffInput, Stage
from handoff.schemas.schedules import SCHEDULE_WORKFLOW, FireRequest, ScheduleFired, ScheduleFiring
from handoff.workers.trigger import PayloadInvalid, start_run, trigger
from handoff.workflows.drift import DriftCheckWorkflow
from handoff.workflows.schedules import ScheduleWorkflow

if TYPE_CHECKING:
    from handoff.workers.app import Handoffs

PREFIX = "handoff/"
"""Every schedule sync manages has an id `handoff/<handoff>` (`handoff/<handoff>/drift` for its drift check);
others in the namespace are never touched."""
DRIFT_SCHEDULE_SUFFIX = "/drift"
MANAGED_WORKFLOWS = (SCHEDULE_WORKFLOW, DRIFT_CHECK_WORKFLOW)
"""What a schedule sync manages starts: a firing, or a drift check."""
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


def drift_schedule_id(handoff: str) -> str:
    return f"{schedule_id(handoff)}{DRIFT_SCHEDULE_SUFFIX}"


def drift_checked_contracts(catalog: Catalog) -> dict[str, HandoffContract]:
    """Drift schedule id -> each contract whose sync has a drift check."""
    return {
        drift_schedule_id(contract.name): contract
        for contract in catalog.contracts
        if contract.sync is not None and contract.sync.drift_check is not None
    }


def drift_fingerprint(contract: HandoffContract, task_queue: str) -> str:
    """What the drift check's Temporal Schedule is made from: the contract's drift check, and the task queue."""
    said = {
        "handoff": contract.name,
        "drift_check": _drift_check_of(contract).model_dump(mode="json"),
        "task_queue": task_queue,
        "workflow": DRIFT_CHECK_WORKFLOW,
    }
    return hashlib.sha256(json.dumps(said, sort_keys=True).encode()).hexdigest()[:16]


def drift_schedule(contract: HandoffContract, task_queue: str) -> Schedule:
    """The Temporal Schedule that runs a contract's drift check every `every`; a check still running skips the next."""
    check = _drift_check_of(contract)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DriftCheckWorkflow.run,
            DriftCheckInput(handoff=contract.name),
            id=f"{drift_schedule_id(contract.name)}/check",
            task_queue=task_queue,
            memo={FINGERPRINT: drift_fingerprint(contract, task_queue)},
            static_summary=f"{contract.name}: drift check, copies against their source of truth",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=check.every)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=NOTE),
    )


def wanted_schedules(catalog: Catalog, task_queue: str) -> dict[str, tuple[Schedule, str, str]]:
    """Schedule id -> (the Temporal Schedule, its fingerprint, its clock in words) for everything the catalog
    schedules: triggers' schedules and drift checks."""
    wanted = {
        sid: (temporal_schedule(contract, task_queue), fingerprint(contract, task_queue), _spec(contract))
        for sid, contract in scheduled_contracts(catalog).items()
    }
    for sid, contract in drift_checked_contracts(catalog).items():
        clock = f"drift check every {_drift_check_of(contract).every}"
        wanted[sid] = (drift_schedule(contract, task_queue), drift_fingerprint(contract, task_queue), clock)
    return wanted


async def sync_schedules(client: Client, catalog: Catalog, *, task_queue: str) -> SyncReport:
    """Make Temporal's `handoff/...` schedules on `task_queue` match the catalog's; idempotent.

    Check the catalog first (`Handoffs.readiness`): a schedule the gate refuses is not one Temporal can take.
    """
    report = SyncReport()
    wanted = wanted_schedules(catalog, task_queue)
    for sid, (desired, made_from, _clock) in wanted.items():
        description = await _described(client, sid)
        if description is None:
            await client.create_schedule(sid, desired)
            report.created.append(sid)
        elif await _fingerprint_of(client, description) == made_from:
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
    wanted = wanted_schedules(catalog, task_queue)
    for sid, (_desired, made_from, clock) in wanted.items():
        description = await _described(client, sid)
        status, next_run = "missing", None
        if description is not None:
            same = await _fingerprint_of(client, description) == made_from
            status = "paused" if description.schedule.state.paused else ("in sync" if same else "out of date")
            next_run = next(iter(description.info.next_action_times), None)
        handoff = sid.removeprefix(PREFIX).removesuffix(DRIFT_SCHEDULE_SUFFIX)
        rows.append(ScheduleRow(id=sid, handoff=handoff, spec=clock, status=status, next_run=next_run))
    for sid in await _ours_not_wanted(client, wanted, task_queue):
        handoff = sid.removeprefix(PREFIX).removesuffix(DRIFT_SCHEDULE_SUFFIX)
        rows.append(ScheduleRow(id=sid, handoff=handoff, spec="-", status="not in the app"))
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


def drift_opener(app: Handoffs) -> Callable[[Client, DriftFinding, str, str], Awaitable[str]]:
    """What the drift check's activity opens each drift case with (`activities.drift`): `open_drift_run`."""

    async def open_run(client: Client, finding: DriftFinding, workflow_id: str, task_queue: str) -> str:
        return await open_drift_run(client, app.catalog, finding, workflow_id, task_queue=task_queue)

    return open_run


async def open_drift_run(
    client: Client, catalog: Catalog, finding: DriftFinding, workflow_id: str, *, task_queue: str
) -> str:
    """Start the handoff's drift run for `finding` (its newest version, whose exception owner holds the case); a
    start while it is open finds it. Returns its workflow id."""
    contract = catalog.contract(finding.handoff)
    handoff_input = HandoffInput(
        event=DRIFT_EVENT,
        payload=finding.payload,
        received_at=datetime.now(UTC),
        contract_version=contract.version,
        drift=finding,
    )
    # Closed already: the check found it in the ledger meanwhile, and the next check numbers past it.
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await start_run(
            client,
            contract,
            handoff_input,
            workflow_id=workflow_id,
            task_queue=task_queue,
            first_stage=Stage.RECEIVED,
            summary=f"{contract.name}: drift of {finding.workflow_id} in {', '.join(finding.systems) or '-'}",
        )
    return workflow_id


def _drift_check_of(contract: HandoffContract) -> DriftCheck:
    assert contract.sync is not None and contract.sync.drift_check is not None
    return contract.sync.drift_check


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


async def _ours_not_wanted(client: Client, wanted: Mapping[str, object], task_queue: str) -> list[str]:
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
            and action.workflow in MANAGED_WORKFLOWS
            and action.task_queue == task_queue
        ):
            found.append(listed.id)
    return sorted(found)
