"""The FastAPI application: routes, error handlers, the body size limit, and a lifespan that connects.

Every route needs an API token of a role it serves (`auth`), but `GET /healthz` and the OpenAPI pages.

`create_app(settings, app)` serves a user's app: it connects to Temporal and opens the ledger when it starts; tests and embedding code pass
their own `client` and `ledger` instead (the app then leaves them open when it stops).

When tracing is on (`HANDOFF_OTLP_ENDPOINT`, `handoff.workers.tracing`), every request gets a server span, and the
client `connect` makes carries the tracing interceptor, so a run an event starts joins the request's trace. A `client`
passed in is used as it is: build it with `connect` (or the app's plugin) for its starts to be traced too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from sqlalchemy import Engine
from temporalio.client import Client

from handoff.workers import inbox
from handoff.workers.api import budget, cases, claims, codec, events, health, runs
from handoff.workers.api.context import ApiContext
from handoff.workers.api.errors import install_error_handlers
from handoff.workers.api.limits import BodySizeLimit
from handoff.workers.api.openapi import install_openapi
from handoff.workers.api.throttle import FailedCredentials
from handoff.workers.app import Handoffs
from handoff.workers.client import connect
from handoff.workers.settings import Settings
from handoff.workers.tracing import tracing_for
from handoff.workers.worker import open_ledger

log = structlog.get_logger(__name__)


def create_app(
    settings: Settings, app: Handoffs, *, client: Client | None = None, ledger: Engine | None = None
) -> FastAPI:
    """The Handoff API for `app`; connects to Temporal and opens the ledger on startup unless given."""
    failures = FailedCredentials(settings.auth_failure_limit, settings.auth_failure_window_seconds)
    context = ApiContext(settings=settings, app=app, failures=failures, client=client, ledger=ledger)
    tracing = tracing_for(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        owns_ledger = context.ledger is None
        if context.ledger is None:
            context.ledger = await asyncio.to_thread(open_ledger, settings)
        try:
            if context.client is None:
                context.client = await connect(settings)
            log.info("api.started", temporal=settings.temporal_address, task_queue=settings.task_queue)
            yield
        finally:
            if owns_ledger and context.ledger is not None:
                context.ledger.dispose()
            if tracing is not None:
                await asyncio.to_thread(tracing.flush)  # the CLI leaves by `os._exit`: no exit handler exports
            log.info("api.stopped")

    api = FastAPI(
        title="Handoff",
        summary="Business handoffs as written contracts, run as durable Temporal workflows.",
        description=(
            "Send events, read exception cases and runs, decide cases as an operator, and read the report. "
            "Every route but `GET /healthz` needs an API token (`Authorization: Bearer <token>`) of a role it "
            "serves (the operators' inbox at `/inbox`, HTML pages outside this document, signs in with one once and "
            "keeps a session cookie). Every error is JSON with a `detail` that names the problem (`ErrorBody`): also a path or "
            "method the API does not serve (404, 405), and a request HTTP cannot read, such as a `Content-Length` "
            "that is not a number or a malformed request line (400, `kind` malformed-request), which reaches no "
            "route."
        ),
        version="0.1.0",
        lifespan=lifespan,
    )
    # FastAPI's own pages (/docs, /redoc, /openapi.json) need no token: they describe the API's shape and hold no
    # data. Every route that does is in a router below, and each declares the roles it serves (`auth.require`).
    api.state.context = context
    api.add_middleware(BodySizeLimit, max_bytes=settings.max_payload_bytes)
    install_error_handlers(api)
    for module in (events, cases, claims, runs, health, codec, budget):
        api.include_router(module.router)
    api.include_router(inbox.router)  # the operators' inbox at /inbox: HTML pages behind a session cookie
    install_openapi(api)
    if tracing is not None:
        tracing.instrument(api)
    return api
