"""What Temporal refuses becomes a JSON answer naming it: a run whose workflow task is being retried takes no
decision meanwhile (Temporal's `WorkflowNotReady`), a 503 with Retry-After rather than a 502 or a 500."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from temporalio.api.common.v1 import GrpcStatus
from temporalio.service import RPCError, RPCStatusCode

from handoff.workers.api.errors import install_error_handlers

NOT_READY = "Unable to perform workflow execution update due to Workflow Task in failed state."


def _refusal(status: RPCStatusCode, detail_type: str | None) -> RPCError:
    """An RPCError as the client raises it, with the gRPC status Temporal sends (code, message, typed details)."""
    grpc = GrpcStatus(code=status.value, message=NOT_READY)
    if detail_type is not None:
        grpc.details.add(type_url=f"type.googleapis.com/temporal.api.errordetails.v1.{detail_type}")
    return RPCError(NOT_READY, status, grpc.SerializeToString())


async def _answer(error: RPCError) -> httpx.Response:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/decision")
    async def refused() -> None:
        raise error

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api:
        return await api.post("/decision")


async def test_a_run_whose_workflow_task_is_retried_is_a_503_to_retry() -> None:
    answer = await _answer(_refusal(RPCStatusCode.FAILED_PRECONDITION, "WorkflowNotReadyFailure"))

    assert (503, "run-not-ready", "5") == (answer.status_code, answer.json()["kind"], answer.headers["retry-after"])
    assert "nothing was changed" in answer.json()["detail"]


async def test_another_failed_precondition_stays_a_502_naming_temporal() -> None:
    answer = await _answer(_refusal(RPCStatusCode.FAILED_PRECONDITION, None))

    assert (502, "temporal-error") == (answer.status_code, answer.json()["kind"])
    assert NOT_READY in answer.json()["detail"]
