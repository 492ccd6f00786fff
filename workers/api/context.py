"""What every route needs, in one place: the settings, the user's app, the Temporal client, the ledger engine, and
the count of bad API tokens by address (`throttle`).

The app's lifespan fills it in (connecting and opening what it was not given); routes receive it through the
`api_context` dependency, so a test can hand the app the kit's own client and ledger.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Engine
from temporalio.client import Client

from handoff.workers.api.errors import ApiProblem, retry_later
from handoff.workers.api.throttle import FailedCredentials
from handoff.workers.app import Handoffs
from handoff.workers.settings import Settings


@dataclass
class ApiContext:
    settings: Settings
    app: Handoffs
    failures: FailedCredentials
    client: Client | None = None
    ledger: Engine | None = None


@dataclass(frozen=True)
class Ready:
    """The context once the lifespan has connected everything: no optional fields left."""

    settings: Settings
    app: Handoffs
    failures: FailedCredentials
    client: Client
    ledger: Engine


def api_context(request: Request) -> Ready:
    """The app's context; 503 when the app was served without its lifespan having connected."""
    context: ApiContext = request.app.state.context
    if context.client is None or context.ledger is None:
        raise ApiProblem(
            503,
            "The API is not connected to Temporal and the ledger yet; retry in a moment.",
            kind="not-connected",
            headers=retry_later(),
        )
    return Ready(
        settings=context.settings,
        app=context.app,
        failures=context.failures,
        client=context.client,
        ledger=context.ledger,
    )
