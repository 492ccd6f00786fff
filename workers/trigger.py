"""Triggers: an event's payload is checked against its contract's model, then starts (or finds) the run.

Shared by `handoff trigger`, `POST /events/{event}` and the demo. The workflow id is `<handoff>/<dedupe key value>`,
so the same event sent again finds the same run instead of starting a second one:
- while the run is open, `USE_EXISTING` returns it;
- after it closed, `REJECT_DUPLICATE` refuses a new run, and we return the closed one (within the namespace's
  retention; the ledger remembers longer).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from handoff.schemas.contract import Catalog, HandoffContract
from handoff.schemas.paths import value_at
from handoff.schemas.runs import FieldError, HandoffInput, Stage, TriggerAccepted
from handoff.workers.edge import dedupe_key_problem, value_problems
from handoff.workflows import search_attributes as sa

log = structlog.get_logger(__name__)


class UnknownEvent(Exception):
    """No contract in the catalog is triggered by this event."""


class PayloadInvalid(Exception):
    """The payload does not fit the trigger's model; nothing was started. `errors` name each field and problem."""

    def __init__(self, event: str, errors: list[FieldError]) -> None:
        self.event = event
        self.errors = errors
        details = "; ".join(f"{e.field}: {e.message}" for e in errors)
        super().__init__(f"Payload of event {event!r} is invalid, nothing was started: {details}")


def contract_for(catalog: Catalog, event: str) -> HandoffContract:
    """The contract `event` triggers, or `UnknownEvent` naming the events that exist."""
    try:
        return catalog.for_event(event)
    except KeyError as error:
        raise UnknownEvent(error.args[0]) from None


def checked_payload(contract: HandoffContract, event: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as the trigger's model reads it (JSON types), or `PayloadInvalid` with every field error:
    the model's, and what no run could carry (`handoff.workers.edge`)."""
    assert contract.trigger is not None and contract.trigger.dedupe_key is not None
    problems = value_problems(payload)
    if problems:
        raise PayloadInvalid(event, problems)
    try:
        model = contract.trigger.payload.model_validate(payload)
    except ValidationError as error:
        raise PayloadInvalid(event, field_errors(error)) from None
    checked = model.model_dump(mode="json")
    key = value_at(checked, contract.trigger.dedupe_key)
    problem = dedupe_key_problem(contract.trigger.dedupe_key, "" if key is None else str(key))
    if problem is not None:
        raise PayloadInvalid(event, [problem])
    return checked


def field_errors(error: ValidationError) -> list[FieldError]:
    """pydantic's errors as `entity.field` paths with readable messages."""
    return [
        FieldError(field=".".join(str(part) for part in e["loc"]) or "(payload)", message=e["msg"], type=e["type"])
        for e in error.errors(include_url=False)
    ]


def workflow_id_for(contract: HandoffContract, payload: Mapping[str, Any]) -> str:
    """`<handoff>/<dedupe key value>`: one event, one run."""
    assert contract.trigger is not None and contract.trigger.dedupe_key is not None
    return f"{contract.name}/{value_at(payload, contract.trigger.dedupe_key)}"


async def trigger(
    client: Client,
    catalog: Catalog,
    event: str,
    payload: Mapping[str, Any],
    *,
    task_queue: str,
    sla_scale: float = 1.0,
) -> TriggerAccepted:
    """Check the payload and start the handoff's run, or return the run this event already started."""
    contract = contract_for(catalog, event)
    checked = checked_payload(contract, event, payload)
    workflow_id = workflow_id_for(contract, checked)
    handoff_input = HandoffInput(
        event=event,
        payload=checked,
        received_at=datetime.now(UTC),
        sla_scale=sla_scale,
        contract_version=contract.version,
    )
    try:
        handle = await start_run(
            client,
            contract,
            handoff_input,
            workflow_id=workflow_id,
            task_queue=task_queue,
            first_stage=Stage.VALIDATING,  # the workflow, which would upsert it at once, need not (one event less)
            summary=f"{contract.name}: {event} {workflow_id.split('/', 1)[1]}",
            details=_details(contract),
        )
    except WorkflowAlreadyStartedError as already:
        log.info("trigger.duplicate_of_closed_run", handoff=contract.name, workflow_id=workflow_id)
        return TriggerAccepted(
            handoff=contract.name, event=event, workflow_id=workflow_id, run_id=already.run_id or "", duplicate=True
        )
    response = getattr(handle, "_start_workflow_response", None)
    duplicate = response is not None and not response.started
    log.info("trigger.accepted", handoff=contract.name, workflow_id=workflow_id, duplicate=duplicate)
    return TriggerAccepted(
        handoff=contract.name,
        event=event,
        workflow_id=workflow_id,
        run_id=handle.result_run_id or handle.run_id or "",
        duplicate=duplicate,
    )


async def start_run(
    client: Client,
    contract: HandoffContract,
    handoff_input: HandoffInput,
    *,
    workflow_id: str,
    task_queue: str,
    first_stage: Stage,
    summary: str,
    details: str | None = None,
) -> WorkflowHandle[Any, Any]:
    """Start a run of `contract` (an event's, or a drift check's), or find the open one with this id: the search
    attributes every run starts with, and the summary (and details) the Temporal UI shows. Raises
    `WorkflowAlreadyStartedError` when a closed run has the id."""
    return await client.start_workflow(
        contract.name,
        handoff_input,
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.HANDOFF_NAME, contract.name),
                SearchAttributePair(sa.HANDOFF_STAGE, first_stage.value),
                SearchAttributePair(sa.CONTRACT_HASH, contract.content_hash()),
                SearchAttributePair(sa.CONTRACT_VERSION, contract.version),
            ]
        ),
        static_summary=summary,
        static_details=details,
    )


def _details(contract: HandoffContract) -> str:
    """The contract in a few lines of markdown, for the Temporal UI's details panel."""
    lines = [f"**{contract.name}** v{contract.version} (`{contract.content_hash()}`)", "", contract.description]
    if contract.exceptions and contract.exceptions.owner:
        lines.append(f"- exceptions: {' -> '.join(contract.exceptions.chain)}, SLA {contract.exceptions.sla}")
    if contract.sync:
        lines.extend(f"- sync to {t.system}: {', '.join(t.fields)}" for t in contract.sync.targets)
    return "\n".join(lines)
