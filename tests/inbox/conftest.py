"""The inbox under test is the real thing: the API app with the inbox's router, served by uvicorn on a loopback
port, over a running kit (the restaurant app, a real worker, the session's Temporal dev server).

`inbox_url` is its address; `tokens` the API tokens of the people who sign in; `Browser` (in `browser.py`) signs
them in over plain HTTP as a browser would (cookies, the forms' CSRF tokens).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from temporalio.client import Client

from examples.restaurant import RestaurantApp
from handoff.activities.ledger.operators import add_operator
from handoff.schemas.operators import Role
from handoff.workers import inbox
from handoff.workers.api import create_app
from handoff.workers.settings import Settings
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.api.conftest import serving_url

INBOX_SLA_SCALE = 1 / 6
"""reservation-to-pos's 30-minute SLA becomes five minutes: no case escalates while a test clicks through it."""

PEOPLE: dict[str, tuple[Role, list[str]]] = {
    "hana": (Role.OPERATOR, ["front-of-house"]),
    "chef": (Role.OPERATOR, ["kitchen-leads"]),
    "vera": (Role.VIEWER, []),
    "till": (Role.SOURCE, []),
}
"""A host (front-of-house, who owns reservation cases), a chef (kitchen-leads), a viewer and an event source."""


@pytest.fixture
async def handoffs(client: Client, restaurant: RestaurantApp, tmp_path: Path) -> AsyncIterator[HandoffKit]:
    """A worker for the restaurant app and a ledger for one test, with SLAs of minutes."""
    async with running_handoffs(client, restaurant, tmp_path, sla_scale=INBOX_SLA_SCALE) as kit:
        yield kit


@pytest.fixture
def tokens(handoffs: HandoffKit) -> dict[str, str]:
    """The API token of each of `PEOPLE`, by name."""
    return {
        name: add_operator(handoffs.ledger, name, groups, declared_groups=handoffs.app.catalog.group_names, role=role)
        for name, (role, groups) in PEOPLE.items()
    }


def inbox_app(kit: HandoffKit, settings: Settings | None = None) -> FastAPI:
    """The API over the kit, with the inbox included as the API's app will include it."""
    api = create_app(settings or kit.settings, kit.app, client=kit.client, ledger=kit.ledger)
    api.include_router(inbox.router)
    return api


@pytest.fixture
async def inbox_url(handoffs: HandoffKit) -> AsyncIterator[str]:
    """The base URL of the API and its inbox, served by uvicorn on a free loopback port."""
    async with serving_url(inbox_app(handoffs)) as url:
        yield url
