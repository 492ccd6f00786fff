"""The OpenAPI document as the API really answers: Handoff's error shape everywhere, and what any route may meet.

FastAPI documents a 422 of its own shape (`HTTPValidationError`) for every route with parameters or a body, but
Handoff answers every error with `ErrorBody` (`errors`), so a client generated from the document would misread the
one answer it most needs. The document is rewritten once, when it is first asked for:
- every 422 of FastAPI's shape becomes `ErrorBody`, and FastAPI's shapes leave the components;
- every route that needs a token may answer 503, with `Retry-After`: resolving the token reads the ledger, and
  whatever the route does next needs the ledger or Temporal;
- every route that takes a body may answer 413: the body size limit runs before any route.

What a route alone may answer it declares itself (`responses=`), as the routers do; Temporal refusing a call is
`errors.TEMPORAL_REFUSED`, for the routes that call it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI

from handoff.schemas.api import ErrorBody

COMPONENTS = "#/components/schemas/"
FASTAPI_VALIDATION_SHAPES = ("HTTPValidationError", "ValidationError")
"""FastAPI's own error schemas, in the order they can be dropped (the first refers to the second)."""

INVALID_REQUEST = (
    "The request is invalid: `errors` names each parameter or field (`query.limit`, `reason`) and what is wrong "
    "with it; `kind` is `invalid-request`, or `malformed-json` for a body that is not JSON."
)
BODY_TOO_LARGE = (
    "The body is larger than `max_payload_bytes` (by its `Content-Length`, or counted as it arrived); nothing was "
    "started or changed."
)
UNAVAILABLE = (
    "The ledger (which resolves the token) or Temporal does not answer (`kind` ledger-unavailable or "
    "temporal-unavailable), the API is not connected to them yet, or a decision's run has a workflow task being "
    "retried (run-not-ready); nothing was started or changed. Retry after `Retry-After` seconds."
)
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
"""The keys of an OpenAPI path item that are operations (the others are `parameters`, `summary` and so on)."""
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}


def install_openapi(api: FastAPI) -> None:
    """Make `api.openapi()`, and so `/openapi.json` and `/docs`, describe Handoff's answers as they are given."""
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = declare_error_answers(generate())
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def declare_error_answers(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's `document` with the error answers that no route declares alone; changed in place."""
    for operation in _operations(document):
        responses = operation.setdefault("responses", {})
        if _is_fastapi_validation_answer(responses.get("422")):
            responses["422"] = _error_answer(INVALID_REQUEST)
        if "requestBody" in operation:
            responses.setdefault("413", _error_answer(BODY_TOO_LARGE))
        if operation.get("security"):
            responses.setdefault("503", _error_answer(UNAVAILABLE, headers=RETRY_AFTER))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_VALIDATION_SHAPES:
        if name in schemas and not _refers_to(document, COMPONENTS + name):
            del schemas[name]
    if "ErrorBody" not in schemas:  # every route above refers to it, even in an app whose routes never named it
        schema = ErrorBody.model_json_schema(ref_template=COMPONENTS + "{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas["ErrorBody"] = schema
    return document


def _operations(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in HTTP_METHODS:
                yield operation


def _error_answer(description: str, *, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": COMPONENTS + "ErrorBody"}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


def _is_fastapi_validation_answer(answer: Any) -> bool:
    return isinstance(answer, dict) and _refers_to(answer, COMPONENTS + FASTAPI_VALIDATION_SHAPES[0])


def _refers_to(node: Any, reference: str) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == reference or any(_refers_to(value, reference) for value in node.values())
    if isinstance(node, list):
        return any(_refers_to(value, reference) for value in node)
    return False
