"""`POST /events/{event}`: an event from another system starts its handoff, or finds the run it already started.

The sender is a source that signs the request with its secret, or the holder of an administrator's (or a source
role's) API token (`signatures`): a system that sends events can do nothing else, and an event it may not send, or
a signature that does not hold, is a 401 before anything is started.

The body is read here rather than declared as a model, because its model depends on the event: each contract's
trigger names the payload model it checks against. Whatever is wrong with it, nothing is started.
"""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Path, Request

from handoff.schemas.api import ErrorBody
from handoff.schemas.runs import TriggerAccepted
from handoff.workers.api.auth import AUTH_RESPONSES
from handoff.workers.api.context import Ready, api_context
from handoff.workers.api.errors import TEMPORAL_REFUSED, ApiProblem, malformed_json
from handoff.workers.api.signatures import EventSender
from handoff.workers.edge import NotJson, parse_event_body
from handoff.workers.trigger import PayloadInvalid, UnknownEvent, contract_for, trigger

log = structlog.get_logger(__name__)

router = APIRouter(tags=["events"], responses=AUTH_RESPONSES)


@router.post(
    "/events/{event}",
    status_code=202,
    response_model=TriggerAccepted,
    summary="Send an event: start its handoff (a repeated event finds the same run)",
    responses={
        401: {
            "model": ErrorBody,
            "description": "Neither a valid signature (`Handoff-Source`, `Handoff-Signature`) nor an API token; "
            "`kind` says which check failed: unsigned, unknown-source, bad-signature, stale-signature, "
            "event-not-allowed, replayed-signature, invalid-token.",
            "headers": {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
        },
        404: {"model": ErrorBody, "description": "No handoff is triggered by this event."},
        413: {"model": ErrorBody, "description": "The body is larger than `max_payload_bytes`."},
        422: {
            "model": ErrorBody,
            "description": "The body is not JSON, or the payload does not fit the trigger's model: see `errors`.",
        },
        **TEMPORAL_REFUSED,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The event's payload, checked against its handoff's trigger model.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def send_event(
    event: Annotated[str, Path(description="The event name, as a handoff's trigger names it.")],
    request: Request,
    sender: EventSender,
    context: Annotated[Ready, Depends(api_context)],
) -> TriggerAccepted:
    """Check the payload against the event's trigger model and start the run; 202 with its workflow id."""
    try:
        contract_for(context.app.catalog, event)
    except UnknownEvent as unknown:
        raise ApiProblem(404, f"{unknown}. Nothing was started.", kind="unknown-event") from None
    payload = _json_object(await request.body())
    try:
        accepted = await trigger(
            context.client,
            context.app.catalog,
            event,
            payload,
            task_queue=context.settings.task_queue,
            sla_scale=context.settings.sla_scale,
        )
    except PayloadInvalid as invalid:
        log.info("api.event_refused", event_name=event, source=sender, errors=len(invalid.errors))
        raise ApiProblem(422, str(invalid), kind="invalid-payload", errors=invalid.errors) from None
    return accepted


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = parse_event_body(body)  # the CLI's `handoff trigger` reads its file the same way
    except NotJson as error:
        raise ApiProblem(422, malformed_json(str(error)).detail, kind="malformed-json") from None
    if not isinstance(payload, dict):
        raise ApiProblem(
            422,
            f"The payload must be a JSON object of entities, got {_json_type(payload)}. Nothing was started.",
            kind="invalid-payload",
        )
    return payload


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")
