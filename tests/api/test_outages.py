"""A dependency that is down is a JSON 503 naming it, with Retry-After, on every route that needs it: never a
plain-text 500. The ledger here is a real PostgreSQL server of the test's own, stopped under the running API."""

from __future__ import annotations

import httpx

from handoff.activities.ledger.database import create_schema, make_engine
from handoff.activities.ledger.operators import add_operator
from handoff.schemas.operators import Role
from handoff.workers.api import create_app
from handoff.workers.testkit import HandoffKit
from tests.api.conftest import serving
from tests.postgres import embedded_postgres_server


async def test_a_ledger_outage_is_a_503_naming_the_ledger_on_every_route_that_needs_it(handoffs: HandoffKit) -> None:
    with embedded_postgres_server() as (url, stop):
        ledger = make_engine(url)
        try:
            create_schema(ledger)
            reader = add_operator(ledger, "ada", [], declared_groups=[], role=Role.ADMINISTRATOR)
            decider = add_operator(ledger, "hana", ["front-of-house"], declared_groups=["front-of-house"])
            app = create_app(handoffs.settings, handoffs.app, client=handoffs.client, ledger=ledger)
            async with serving(app, reader) as api:
                before = await api.get("/cases")
                stop()  # the database goes away under the running API
                answers = {
                    "GET /cases": await api.get("/cases"),
                    "GET /runs": await api.get("/runs"),
                    "GET /report": await api.get("/report"),
                    "GET /cases/C-1": await api.get("/cases/C-1"),
                    "POST /cases/C-1/decision": await api.post(
                        "/cases/C-1/decision",
                        json={"decision": "approve", "reason": "fine"},
                        headers={"Authorization": f"Bearer {decider}"},
                    ),
                }
        finally:
            ledger.dispose()

    assert 200 == before.status_code
    assert {route: 503 for route in answers} == {route: r.status_code for route, r in answers.items()}
    assert {"ledger-unavailable"} == {r.json()["kind"] for r in answers.values()}
    assert {"5"} == {r.headers["retry-after"] for r in answers.values()}
    assert all("ledger is unavailable" in r.json()["detail"] for r in answers.values())


async def test_an_api_served_before_it_connected_answers_a_503_that_says_so(handoffs: HandoffKit) -> None:
    """Served without its start-up (no Temporal client, no ledger yet): a JSON 503 with Retry-After, never a 500."""
    app = create_app(handoffs.settings, handoffs.app)  # its lifespan never runs under a bare ASGI transport
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api:
        answer = await api.get("/cases", headers={"Authorization": "Bearer anything"})

    assert (503, "not-connected", "5") == (answer.status_code, answer.json()["kind"], answer.headers["retry-after"])
