"""The API under test is the real thing: uvicorn on a loopback port, serving `create_app` over a running kit.

Requests go through httpx over TCP, so status codes, headers, the body size limit and the lifespan are exercised
exactly as a client meets them. Every route but health needs a token: `api` sends an administrator's (who may send
events and read everything), `anonymous` none, and a test that acts as someone else sends their token per request. SLAs are scaled so a reservation case waits a minute before escalating: long
enough for a test to decide it even on a busy machine, short enough that nothing lingers.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from temporalio.client import Client

from examples.restaurant import RestaurantApp
from handoff.activities.ledger.operators import add_operator
from handoff.schemas.operators import Role
from handoff.workers.api import create_app
from handoff.workers.settings import Settings
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.ledgers import copy_migrated_ledger

API_SLA_SCALE = 1 / 30
"""reservation-to-pos's 30-minute SLA becomes one minute; lead-to-invoice's 8 hours, 16 minutes."""


@pytest.fixture
async def handoffs(
    client: Client, restaurant: RestaurantApp, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[HandoffKit]:
    """A worker for the restaurant app and a ledger for one test, with SLAs long enough to decide by hand."""
    copy_migrated_ledger(Settings(home=tmp_path).ledger_url, sqlite_template)
    async with running_handoffs(client, restaurant, tmp_path, sla_scale=API_SLA_SCALE) as kit:
        yield kit


@pytest.fixture
async def api_url(handoffs: HandoffKit) -> AsyncIterator[str]:
    """The base URL of the API served by uvicorn on a free loopback port."""
    async with serving_url(
        create_app(handoffs.settings, handoffs.app, client=handoffs.client, ledger=handoffs.ledger)
    ) as url:
        yield url


@pytest.fixture
async def api(api_url: str, tokens: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for the API that sends the administrator's token (a request's own header replaces it)."""
    async with httpx.AsyncClient(base_url=api_url, timeout=30, headers=bearer(tokens["ada"])) as http:
        yield http


@pytest.fixture
async def anonymous(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for the same API that sends no token."""
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
        yield http


OPERATORS: dict[str, tuple[Role, list[str]]] = {
    "hana": (Role.OPERATOR, ["front-of-house"]),
    "chef": (Role.OPERATOR, ["kitchen-leads"]),
    "sam": (Role.OPERATOR, ["sales-ops"]),
    "vera": (Role.VIEWER, []),
    "ada": (Role.ADMINISTRATOR, []),
    "till": (Role.SOURCE, []),
}
"""Three operators, a host (front-of-house), a chef (kitchen-leads) and a sales-ops clerk; a viewer; an
administrator; and an event source (the restaurant's till)."""


@pytest.fixture
def tokens(handoffs: HandoffKit) -> dict[str, str]:
    """The API token of each of `OPERATORS`, by name."""
    return {
        name: add_operator(handoffs.ledger, name, groups, declared_groups=handoffs.app.catalog.group_names, role=role)
        for name, (role, groups) in OPERATORS.items()
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def serving_url(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on 127.0.0.1:<free port> for the block; yield its base URL."""
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on connections of a socket that says it is TCP,
    # and without it every answer after a connection's first waits ~40 ms for a delayed ACK (Nagle).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as listener:
        listener.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            if task.done():
                task.result()  # the server failed to start: raise its error
            await asyncio.sleep(0.01)
        port = listener.getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await task


@asynccontextmanager
async def serving(app: Any, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Serve an ASGI app as `serving_url` does; yield an httpx client for it that sends `token`, if given."""
    async with (
        serving_url(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=bearer(token) if token else None) as http,
    ):
        yield http
