"""The inbox under test is the real thing: the API app with the inbox's router, served by uvicorn on a loopback
port, over a running kit (the restaurant app, a real worker, the session's Temporal dev server).

`inbox_url` is its address; `tokens` the API tokens of the people who sign in; `Visit` (in `visits.py`) signs
them in over plain HTTP as a browser would (cookies, the forms' CSRF tokens). The browser tests drive a real Chromium
(`browser`, `phone`, `sign_in`) and write their screenshots under `screenshot(name)`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from temporalio.client import Client

from examples.restaurant import RestaurantApp
from handoff.activities.ledger.operators import add_operator
from handoff.schemas.cases import ExceptionCase
from handoff.schemas.operators import Role
from handoff.workers import inbox
from handoff.workers.api import create_app
from handoff.workers.settings import Settings
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.api.checks import open_case_in_ledger
from tests.api.conftest import serving_url
from tests.ledgers import copy_migrated_ledger
from tests.runtime import payloads

INBOX_SLA_SCALE = 1 / 6
"""reservation-to-pos's 30-minute SLA becomes five minutes: no case escalates while a test clicks through it."""

PEOPLE: dict[str, tuple[Role, list[str]]] = {
    "hana": (Role.OPERATOR, ["front-of-house"]),
    "chef": (Role.OPERATOR, ["kitchen-leads"]),
    "vera": (Role.VIEWER, []),
    "till": (Role.SOURCE, []),
}
"""A host (front-of-house, who owns reservation cases), a chef (kitchen-leads), a viewer and an event source."""

CHROMIUM = Path(os.environ.get("HANDOFF_TEST_CHROMIUM", "/usr/bin/chromium"))
"""Debian's chromium package; Playwright drives it instead of a browser of its own (none is downloaded)."""
ARTIFACTS = Path(os.environ.get("HANDOFF_TEST_ARTIFACTS", Path(__file__).parents[2] / ".handoff" / "test-artifacts"))
"""Where the browser tests' screenshots go (under `inbox/`); git ignores the default."""
PHONE = {"width": 390, "height": 844}


@pytest.fixture
async def handoffs(
    client: Client, restaurant: RestaurantApp, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[HandoffKit]:
    """A worker for the restaurant app and a ledger for one test, with SLAs of minutes."""
    copy_migrated_ledger(Settings(home=tmp_path).ledger_url, sqlite_template)
    async with running_handoffs(client, restaurant, tmp_path, sla_scale=INBOX_SLA_SCALE) as kit:
        yield kit


@pytest.fixture
def tokens(handoffs: HandoffKit) -> dict[str, str]:
    """The API token of each of `PEOPLE`, by name."""
    return {
        name: add_operator(handoffs.ledger, name, groups, declared_groups=handoffs.app.catalog.group_names, role=role)
        for name, (role, groups) in PEOPLE.items()
    }


@pytest.fixture
async def reservation_case(handoffs: HandoffKit) -> ExceptionCase:
    """An open front-of-house case: a party of 14 breaks the size limit and the deposit rule."""
    accepted = await handoffs.send("reservation.confirmed", payloads.reservation(reservation__party_size=14))
    return await open_case_in_ledger(handoffs, accepted.workflow_id)


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


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the module's tests; each test opens its own contexts (cookie jars) in it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"No Chromium at {CHROMIUM}: the inbox's browser tests drive Debian's chromium package. `make browser` "
            "installs it (apt-get install -y chromium); or set HANDOFF_TEST_CHROMIUM to another Chromium binary.",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A browser context the size of a phone, with its own cookies."""
    async with phone_context(browser) as context:
        yield context


@asynccontextmanager
async def phone_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser context (its own cookie jar: another person's phone) the size of a phone."""
    context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        await context.close()


async def sign_in(page: Page, url: str, token: str) -> None:
    """Open the inbox, which asks for a token, and sign in with it."""
    await page.goto(f"{url}/inbox")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Your API token").fill(token)
    await page.get_by_role("button", name="Sign in").click()


def screenshot(name: str) -> Path:
    """Where the screenshot `name` is written, under the artifacts' `inbox/` folder (made if missing)."""
    folder = ARTIFACTS / "inbox"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
