"""The exception budget over HTTP, served by uvicorn over a real kit: `GET /budget` lists the held handoff, an operator
of its owner group resumes it (the held run delivers once) or an administrator rejects its runs; another group's
operator gets 403, a viewer 403, nothing held 409, an empty reason 422, each as an ErrorBody naming the problem."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from handoff.activities.ledger.budget import holds_of
from handoff.activities.ledger.operators import add_operator
from handoff.schemas.operators import Role
from handoff.schemas.runs import Stage
from handoff.workers.testkit import HandoffKit
from tests.api.conftest import bearer
from tests.runtime.test_budget import CountingPos, KeptNotices, budgeted_app, send_held, tripped
from tests.workflows.sample_contracts import NAME

PEOPLE: dict[str, tuple[Role, list[str]]] = {
    "ana": (Role.OPERATOR, ["hosts"]),
    "max": (Role.OPERATOR, ["managers"]),
    "vera": (Role.VIEWER, []),
    "ada": (Role.ADMINISTRATOR, []),
}


@pytest.fixture
def pos() -> CountingPos:
    return CountingPos()


@pytest.fixture
async def handoffs(client: Client, tmp_path: Path, pos: CountingPos) -> AsyncIterator[HandoffKit]:
    """The budgeted handoff, tripped by a burst of bad events (replaces the restaurant kit of tests/api)."""
    async with tripped(client, tmp_path, budgeted_app(pos, KeptNotices())) as kit:
        yield kit


@pytest.fixture
def tokens(handoffs: HandoffKit) -> dict[str, str]:
    """The API token of each of `PEOPLE`, by name."""
    return {
        name: add_operator(handoffs.ledger, name, groups, declared_groups=handoffs.app.catalog.group_names, role=role)
        for name, (role, groups) in PEOPLE.items()
    }


async def test_the_held_handoff_is_listed_and_its_owner_resumes_it(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str], pos: CountingPos
) -> None:
    """A viewer reads `GET /budget`; ana (hosts) resumes; the held run delivers exactly once; the hold keeps it."""
    [(workflow_id, booking_id)] = await send_held(handoffs, 1)

    listed = await api.get("/budget", headers=bearer(tokens["vera"]))
    resumed = await api.post(f"/handoffs/{NAME}/resume", json={"reason": "source fixed"}, headers=bearer(tokens["ana"]))
    result = await handoffs.result(workflow_id)
    after = await api.get("/budget", headers=bearer(tokens["vera"]))

    assert (200, 200, 200) == (listed.status_code, resumed.status_code, after.status_code), resumed.text
    [hold] = listed.json()
    assert (NAME, "held", 5, 4, 0.8, 1, "hosts") == tuple(
        hold[key] for key in ("handoff", "state", "runs", "runs_with_case", "case_rate", "held_runs", "owner_group")
    )
    assert ("resumed", "ana", "source fixed") == tuple(
        resumed.json()["hold"][k] for k in ("state", "decided_by", "reason")
    )
    assert [workflow_id] == resumed.json()["signalled"]
    assert [] == after.json()
    assert Stage.DELIVERED == result.stage
    assert {booking_id: 1} == dict(pos.writes)


async def test_an_administrator_rejects_the_held_runs(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str], pos: CountingPos
) -> None:
    """`POST /handoffs/{name}/reject-held` by an administrator ends the held run rejected; nothing is delivered."""
    [(workflow_id, _)] = await send_held(handoffs, 1)

    rejected = await api.post(f"/handoffs/{NAME}/reject-held", json={"reason": "garbage feed"})
    result = await handoffs.result(workflow_id)

    assert 200 == rejected.status_code, rejected.text
    assert Stage.REJECTED == result.stage and {} == dict(pos.writes)
    assert ["rejected"] == [hold.state.value for hold in holds_of(handoffs.ledger, NAME)]


async def test_refusals_are_error_bodies(
    api: httpx.AsyncClient, anonymous: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """Another group's operator and a viewer 403, an empty reason 422, no token 401; nothing held 409."""
    [(workflow_id, _)] = await send_held(handoffs, 1)
    url = f"/handoffs/{NAME}/resume"

    outsider = await api.post(url, json={"reason": "let it go"}, headers=bearer(tokens["max"]))
    viewer = await api.post(url, json={"reason": "let it go"}, headers=bearer(tokens["vera"]))
    empty = await api.post(url, json={"reason": " "}, headers=bearer(tokens["ana"]))
    nobody = await anonymous.post(url, json={"reason": "let it go"})
    cleared = await api.post(f"/handoffs/{NAME}/reject-held", json={"reason": "done"})
    again = await api.post(url, json={"reason": "again"})
    await handoffs.result(workflow_id)

    assert [403, 403, 422, 401, 200, 409] == [r.status_code for r in (outsider, viewer, empty, nobody, cleared, again)]
    assert "not-allowed" == outsider.json()["kind"] and "hosts" in outsider.json()["detail"]
    assert "no-active-hold" == again.json()["kind"] and NAME in again.json()["detail"]
    assert all("detail" in r.json() for r in (viewer, empty, nobody))
