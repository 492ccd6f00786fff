"""Errors as the API answers them: always JSON, always a `detail` that names the problem (`schemas.api.ErrorBody`).

Routes raise `ApiProblem`; request validation failures become field errors (`body.reason: ...`), and a body that
is not JSON at all (malformed, not UTF-8, nested past the parser's limit) is a 422 whose `kind` is `malformed-json`
and that says where it broke, on every route that reads a body. Starlette's and FastAPI's own refusals (an unknown
path, a method the path does not serve) get the same shape. A dependency that is down (the ledger, Temporal) is a
503 naming it, with `Retry-After`; anything else that escapes a route is a JSON 500 whose traceback goes to the
log, never to the client. A request HTTP itself cannot read never reaches these handlers: `protocol` answers it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from temporalio.service import RPCError, RPCStatusCode

from handoff.schemas.api import ErrorBody
from handoff.schemas.runs import FieldError
from handoff.workers.edge import unparsable_reason

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 5
"""What a 503 tells the client to wait: long enough for a database failover or a server restart to show."""

TEMPORAL_REFUSED: dict[int | str, dict[str, Any]] = {
    502: {
        "model": ErrorBody,
        "description": "Temporal refused the call for a reason other than being down (`kind` temporal-error); "
        "`detail` quotes it.",
    }
}
"""The `responses` entry of a route that calls Temporal (the 503 for a Temporal that is down is every route's)."""


class ApiProblem(Exception):
    """An answer other than success: its status, the words for it, and field errors when there are some."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.body = ErrorBody(detail=detail, kind=kind, errors=list(errors))
        self.headers = dict(headers or {})


def malformed_json(reason: str) -> ErrorBody:
    """The answer to a body that is not JSON, for every route that takes one."""
    return ErrorBody(
        detail=f"The body is not valid JSON: {reason}. Nothing was started or changed.", kind="malformed-json"
    )


def error_response(status_code: int, body: ErrorBody, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body.model_dump(mode="json"), status_code=status_code, headers=dict(headers or {}))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every failure into an `ErrorBody`."""
    app.add_exception_handler(ApiProblem, _problem)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_refusal)  # type: ignore[arg-type]
    app.add_exception_handler(RPCError, _temporal_error)  # type: ignore[arg-type]
    app.add_exception_handler(SQLAlchemyError, _ledger_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


async def _problem(_request: Request, problem: ApiProblem) -> JSONResponse:
    return error_response(problem.status_code, problem.body, problem.headers)


async def _invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
    problems = list(error.errors())
    malformed = next((e for e in problems if e.get("type") == "json_invalid"), None)
    if malformed is not None:
        reason = (malformed.get("ctx") or {}).get("error", "it does not parse")
        position = malformed.get("loc", ("body", 0))[-1]
        return error_response(422, malformed_json(f"{reason} at {_line_and_column(error.body, position)}"))
    field_errors = [_field_error(e) for e in problems]
    listed = "; ".join(f"{e.field}: {e.message}" for e in field_errors)
    return error_response(
        422, ErrorBody(detail=f"The request is invalid: {listed}", kind="invalid-request", errors=field_errors)
    )


async def _http_refusal(request: Request, error: HTTPException) -> JSONResponse:
    """Starlette's and FastAPI's own refusals, in Handoff's shape, with their headers (`Allow` on a 405)."""
    if error.status_code == 400 and error.__cause__ is not None:
        # FastAPI's answer to a JSON body its parser gave up on (not UTF-8, nested past the recursion limit): the
        # same fault as a malformed body, so the same 422 that the event route gives.
        return error_response(422, malformed_json(unparsable_reason(error.__cause__)))
    route = f"{request.method} {request.url.path}"
    if error.status_code == 404:
        detail = f"No route {route}: the API's routes are listed at /docs (and /openapi.json)."
    elif error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "")
        detail = f"{request.method} is not served at {request.url.path}; it serves {allowed or 'other methods'}."
    else:
        detail = str(error.detail)
    return error_response(error.status_code, ErrorBody(detail=detail, kind=_kind_of(error.status_code)), error.headers)


async def _temporal_error(_request: Request, error: RPCError) -> JSONResponse:
    log.warning("api.temporal_error", status=error.status.name if error.status else None, message=error.message)
    if error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        detail = f"Temporal is unavailable ({error.message}); nothing was changed. Retry in a moment."
        return error_response(503, ErrorBody(detail=detail, kind="temporal-unavailable"), retry_later())
    if _run_not_ready(error):
        detail = (
            "The run's workflow task failed and is being retried (the worker's log says why), and Temporal takes no "
            "decision for it meanwhile; nothing was changed. Retry in a moment."
        )
        return error_response(503, ErrorBody(detail=detail, kind="run-not-ready"), retry_later())
    return error_response(502, ErrorBody(detail=f"Temporal refused the call: {error.message}", kind="temporal-error"))


async def _ledger_error(request: Request, error: SQLAlchemyError) -> JSONResponse:
    if isinstance(error, OperationalError | InterfaceError | PoolTimeout):
        log.warning("api.ledger_unavailable", path=request.url.path, error=type(error).__name__)
        detail = "The ledger is unavailable (its database does not answer); nothing was changed. Retry in a moment."
        return error_response(503, ErrorBody(detail=detail, kind="ledger-unavailable"), retry_later())
    return await _unexpected(request, error)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.error("api.unexpected_error", path=request.url.path, method=request.method, exc_info=error)
    detail = "Handoff failed to answer this request; the error is in its log. Nothing was changed that a retry repeats."
    return error_response(500, ErrorBody(detail=detail, kind="internal-error"))


def _kind_of(status_code: int) -> str:
    """'not-found', 'method-not-allowed': the status's own name, for refusals that have no kind of Handoff's."""
    try:
        return HTTPStatus(status_code).phrase.lower().replace(" ", "-")
    except ValueError:
        return f"http-{status_code}"


def _run_not_ready(error: RPCError) -> bool:
    """Temporal refused an Update because the run's workflow task is failing (an overloaded worker whose tasks outlive
    their timeout, or a bug): `WorkflowNotReadyFailure`. Nothing was admitted, so sending it again later is safe."""
    if error.status is not RPCStatusCode.FAILED_PRECONDITION:
        return False
    return any(detail.type_url.endswith(".WorkflowNotReadyFailure") for detail in error.grpc_status.details)


def retry_later() -> dict[str, str]:
    """The `Retry-After` header of a 503: how long a dependency that is down is given to come back."""
    return {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _line_and_column(document: object, position: object) -> str:
    if not isinstance(document, str) or not isinstance(position, int):
        return f"character {position}"
    line = document.count("\n", 0, position) + 1
    column = position - document.rfind("\n", 0, position)
    return f"line {line}, column {column}"


def _field_error(error: Mapping[str, Any]) -> FieldError:
    return FieldError(
        field=_location(error.get("loc", ())), message=str(error.get("msg", "")), type=str(error.get("type", ""))
    )


def _location(loc: Sequence[Any]) -> str:
    """`body.reason` reads `reason`; query and path parameters keep their origin: `query.limit`."""
    parts = [str(part) for part in loc]
    if parts[:1] == ["body"]:
        parts = parts[1:]
    return ".".join(parts) or "(body)"
