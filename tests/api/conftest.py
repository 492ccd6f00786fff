"""The API under test is the real thing: uvicorn on a loopback port, serving `create_app` over a running kit.

Requests go through httpx over TCP, so status codes, headers, the body size limit and the lifespan are exercised
exactly as a client meets them. SLAs are scaled so a reservation case waits a minute before escalating: long
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
from handoff.workers.api import create_app
from handoff.workers.testkit import HandoffKit, running_handoffs

API_SLA_SCALE = 1 / 30
"""reservation-to-pos's 30-minute SLA becomes one minute; lead-to-invoice's 8 hours, 16 minutes."""


@pytest.fixture
async def handoffs(client: Client, restaurant: RestaurantApp, tmp_path: Path) -> AsyncIterator[HandoffKit]:
    """A worker for the restaurant app and a ledger for one test, with SLAs long enough to decide by hand."""
    async with running_handoffs(client, restaurant, tmp_path, sla_scale=API_SLA_SCALE) as kit:
        yield kit


@pytest.fixture
async def api(handoffs: HandoffKit) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for the API served by uvicorn on a free loopback port."""
    async with serving(
        create_app(handoffs.settings, handoffs.app, client=handoffs.client, ledger=handoffs.ledger)
    ) as http:
        yield http


@pytest.fixture
def tokens(handoffs: HandoffKit) -> dict[str, str]:
    """API tokens of three operators: a host (front-of-house), a chef (kitchen-leads) and a sales-ops clerk."""
    members = {"hana": ["front-of-house"], "chef": ["kitchen-leads"], "sam": ["sales-ops"]}
    return {
        name: add_operator(handoffs.ledger, name, groups, declared_groups=handoffs.app.catalog.group_names)
        for name, groups in members.items()
    }


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Serve an ASGI app with uvicorn on 127.0.0.1:<free port> for the block; yield an httpx client for it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            if task.done():
                task.result()  # the server failed to start: raise its error
            await asyncio.sleep(0.01)
        port = listener.getsockname()[1]
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                yield http
        finally:
            server.should_exit = True
            await task
