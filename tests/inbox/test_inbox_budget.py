"""Held handoffs in the inbox, over plain HTTP against a real kit: the cases page shows the held handoff with its
figures; an operator of its owner group gets the resume and reject forms (CSRF-protected) and resuming delivers the
held run once; another group's operator sees the banner without forms and is refused if they post anyway; a held
run's page shows it held."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from handoff.activities.ledger.budget import holds_of
from handoff.activities.ledger.operators import add_operator
from handoff.schemas.operators import Role
from handoff.schemas.runs import Stage
from handoff.workers.inbox.session import CSRF_FIELD
from handoff.workers.testkit import HandoffKit
from tests.inbox.visits import visiting_as
from tests.runtime.test_budget import CountingPos, KeptNotices, budgeted_app, send_held, tripped
from tests.workflows.sample_contracts import NAME

PEOPLE: dict[str, tuple[Role, list[str]]] = {"ana": (Role.OPERATOR, ["hosts"]), "max": (Role.OPERATOR, ["managers"])}


@pytest.fixture
def pos() -> CountingPos:
    return CountingPos()


@pytest.fixture
async def handoffs(client: Client, tmp_path: Path, pos: CountingPos) -> AsyncIterator[HandoffKit]:
    """The budgeted handoff, tripped by a burst of bad events (replaces the restaurant kit of tests/inbox)."""
    async with tripped(client, tmp_path, budgeted_app(pos, KeptNotices())) as kit:
        yield kit


@pytest.fixture
def tokens(handoffs: HandoffKit) -> dict[str, str]:
    return {
        name: add_operator(handoffs.ledger, name, groups, declared_groups=handoffs.app.catalog.group_names, role=role)
        for name, (role, groups) in PEOPLE.items()
    }


async def test_an_owner_resumes_a_held_handoff_from_the_cases_page(
    inbox_url: str, handoffs: HandoffKit, tokens: dict[str, str], pos: CountingPos
) -> None:
    """ana sees the banner with the figures and the forms; her resume redirects to the inbox and delivers once."""
    [(workflow_id, booking_id)] = await send_held(handoffs, 1)
    async with visiting_as(inbox_url, tokens["ana"]) as ana:
        cases = await ana.http.get("/inbox")
        run_page = await ana.http.get(f"/inbox/runs/{workflow_id}")
        csrf = await ana.csrf("/inbox")
        unsigned = await ana.post(f"/inbox/handoffs/{NAME}/resume", {"reason": "fixed"})
        no_reason = await ana.post(f"/inbox/handoffs/{NAME}/resume", {"reason": " ", CSRF_FIELD: csrf})
        resumed = await ana.post(f"/inbox/handoffs/{NAME}/resume", {"reason": "source fixed", CSRF_FIELD: csrf})
        result = await handoffs.result(workflow_id)
        after = await ana.http.get("/inbox")

    assert (200, 200) == (cases.status_code, run_page.status_code)
    assert 'data-testid="held-handoffs"' in cases.text
    assert "4 of 5 runs opened a case" in cases.text and "(80%)" in cases.text
    assert f'action="/inbox/handoffs/{NAME}/resume"' in cases.text
    assert f'action="/inbox/handoffs/{NAME}/reject-held"' in cases.text
    assert "held" in run_page.text
    assert 403 == unsigned.status_code
    assert 422 == no_reason.status_code
    assert (303, "/inbox") == (resumed.status_code, resumed.headers["location"])
    assert Stage.DELIVERED == result.stage and {booking_id: 1} == dict(pos.writes)
    assert 'data-testid="held-handoffs"' not in after.text
    assert [("resumed", "ana", "source fixed")] == [
        (hold.state.value, hold.decided_by, hold.reason) for hold in holds_of(handoffs.ledger, NAME)
    ]


async def test_another_groups_operator_sees_the_banner_but_may_not_decide(
    inbox_url: str, handoffs: HandoffKit, tokens: dict[str, str], pos: CountingPos
) -> None:
    """max (managers) gets no forms, and a resume he posts anyway is a 403 page; the run stays held."""
    [(workflow_id, _)] = await send_held(handoffs, 1)
    async with visiting_as(inbox_url, tokens["max"]) as manager:
        cases = await manager.http.get("/inbox")
        csrf = await manager.csrf("/inbox")  # the sign-out form carries it
        refused = await manager.post(f"/inbox/handoffs/{NAME}/resume", {"reason": "let it go", CSRF_FIELD: csrf})
    status = await handoffs.status(workflow_id)

    assert 'data-testid="held-handoffs"' in cases.text
    assert f'action="/inbox/handoffs/{NAME}/resume"' not in cases.text
    assert 403 == refused.status_code and "may not decide the hold" in refused.text
    assert Stage.HELD == status.stage and {} == dict(pos.writes)
