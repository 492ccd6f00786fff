"""Errors as the API answers them: always JSON, always a `detail` that names the problem (`schemas.api.ErrorBody`).

Routes raise `ApiProblem`; request validation failures become field errors (`body.reason: ...`), and a body that
is not JSON at all is a 422 (as FastAPI answers it) whose `kind` is `malformed-json` and that says where it broke.
A dependency that is down (the ledger, Temporal) is a 503 naming it, with `Retry-After`; anything else that escapes
a route is a JSON 500 whose traceback goes to the log, never to the client.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from temporalio.service import RPCError, RPCStatusCode

from handoff.schemas.api import ErrorBody
from handoff.schemas.runs import FieldError

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 5
"""What a 503 tells the client to wait: long enough for a database failover or a server restart to show."""


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


async def _temporal_error(_request: Request, error: RPCError) -> JSONResponse:
    log.warning("api.temporal_error", status=error.status.name if error.status else None, message=error.message)
    if error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        detail = f"Temporal is unavailable ({error.message}); nothing was changed. Retry in a moment."
        return error_response(503, ErrorBody(detail=detail, kind="temporal-unavailable"), _retry_later())
    return error_response(502, ErrorBody(detail=f"Temporal refused the call: {error.message}", kind="temporal-error"))


async def _ledger_error(request: Request, error: SQLAlchemyError) -> JSONResponse:
    if isinstance(error, OperationalError | InterfaceError | PoolTimeout):
        log.warning("api.ledger_unavailable", path=request.url.path, error=type(error).__name__)
        detail = "The ledger is unavailable (its database does not answer); nothing was changed. Retry in a moment."
        return error_response(503, ErrorBody(detail=detail, kind="ledger-unavailable"), _retry_later())
    return await _unexpected(request, error)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.error("api.unexpected_error", path=request.url.path, method=request.method, exc_info=error)
    detail = "Handoff failed to answer this request; the error is in its log. Nothing was changed that a retry repeats."
    return error_response(500, ErrorBody(detail=detail, kind="internal-error"))


def _retry_later() -> dict[str, str]:
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
