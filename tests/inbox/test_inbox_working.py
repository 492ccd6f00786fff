"""Working a case together in the inbox: claim and release it, comment on it, and the decision of a case another
operator holds refused at the edge; four eyes, where a contract asks for them, shown as a first approval that waits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from handoff import Handoffs, Max, Min, WriteOutcome
from handoff.activities.ledger.operators import add_operator
from handoff.schemas.cases import ExceptionCase
from handoff.schemas.contract import DecisionKind, ExceptionPolicy, FourEyes
from handoff.schemas.runs import Stage
from handoff.workers.inbox.session import CSRF_FIELD
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.api.checks import open_case_in_ledger, run_state
from tests.api.conftest import serving_url
from tests.inbox.conftest import inbox_app
from tests.inbox.visits import visiting_as
from tests.workflows.sample_contracts import GROUPS, ready_contract


@pytest.fixture
def ines(handoffs: HandoffKit, tokens: dict[str, str]) -> str:
    """The token of a second host, so front-of-house has two operators."""
    return add_operator(handoffs.ledger, "ines", ["front-of-house"], declared_groups=handoffs.app.catalog.group_names)


async def test_a_claimed_case_shows_its_holder_and_only_they_decide_it_until_they_release_it(
    inbox_url: str, handoffs: HandoffKit, tokens: dict[str, str], ines: str, reservation_case: ExceptionCase
) -> None:
    """Hana claims the case: the list and the page say so; Ines's decision is refused in the ledger's words and
    reaches no run; once Hana releases it, Ines may claim it."""
    path = f"/inbox/cases/{reservation_case.id}"
    before = await run_state(handoffs, reservation_case.workflow_id)
    async with visiting_as(inbox_url, tokens["hana"]) as hana, visiting_as(inbox_url, ines) as colleague:
        claimed = await hana.post(f"{path}/claim", {CSRF_FIELD: await hana.csrf(path)})
        listing = await colleague.http.get("/inbox")
        seen = await colleague.http.get(path)
        held = await colleague.post(
            f"{path}/decision", {CSRF_FIELD: await colleague.csrf(path), "decision": "reject", "reason": "mine now"}
        )
        after_held = await run_state(handoffs, reservation_case.workflow_id)
        taken = await colleague.post(f"{path}/claim", {CSRF_FIELD: await colleague.csrf(path)})
        released = await hana.post(f"{path}/release", {CSRF_FIELD: await hana.csrf(path)})
        retaken = await colleague.post(f"{path}/claim", {CSRF_FIELD: await colleague.csrf(path)})
        history = (await hana.http.get(path)).text

    assert (303, path) == (claimed.status_code, claimed.headers["location"])
    assert "held by hana" in listing.text
    assert "hana holds this case: only they decide it while they hold it." in seen.text
    assert (409, True) == (held.status_code, "is held by hana" in held.text)
    assert before == after_held
    assert (409, 303, 303) == (taken.status_code, released.status_code, retaken.status_code)
    acts = [">claimed</strong> · hana", ">released</strong> · hana", ">claimed</strong> · ines"]
    positions = [history.find(act) for act in acts]
    assert (-1 not in positions, sorted(positions)) == (True, positions)


async def test_a_comment_is_kept_in_the_history_and_a_bad_one_is_refused_beside_the_box(
    inbox_url: str, tokens: dict[str, str], reservation_case: ExceptionCase
) -> None:
    """A host's comment joins the case's history; an empty one is refused next to the comment box; the chef, of
    another group, may not comment, and is told why."""
    path = f"/inbox/cases/{reservation_case.id}"
    async with visiting_as(inbox_url, tokens["hana"]) as hana, visiting_as(inbox_url, tokens["chef"]) as chef:
        said = await hana.post(f"{path}/comment", {CSRF_FIELD: await hana.csrf(path), "comment": "guest calls at 5"})
        empty = await hana.post(f"{path}/comment", {CSRF_FIELD: await hana.csrf(path), "comment": "   "})
        outsider = await chef.post(f"{path}/comment", {CSRF_FIELD: await chef.csrf(path), "comment": "hi"})
        forged = await hana.post(f"{path}/comment", {"comment": "forged"})
        page = (await hana.http.get(path)).text

    assert (303, 422, 403, 403) == (said.status_code, empty.status_code, outsider.status_code, forged.status_code)
    assert "guest calls at 5" in page and "forged" not in page
    assert 'data-testid="comment-problem">The comment cannot be kept' in empty.text
    assert "may not comment on case" in outsider.text
    assert 'id="comment"' not in (await _page_of(inbox_url, tokens["chef"], path))


async def _page_of(url: str, token: str, path: str) -> str:
    async with visiting_as(url, token) as visit:
        return (await visit.http.get(path)).text


class Pos:
    """The POS of the four-eyes app: a test adapter (the boundary where a fake belongs) that accepts every write."""

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        return WriteOutcome.WRITTEN


async def test_under_four_eyes_a_first_approval_waits_for_a_second_host(client: Client, tmp_path: Path) -> None:
    """Where the contract asks for four eyes, the first host's approval is shown as kept and waiting, and the case
    stays open until a second host of the group agrees."""
    app = Handoffs(
        groups=GROUPS,
        contracts=(
            ready_contract(
                rules=(Max(field="booking.party_size", value=6, reason="The floor seats six at a table."),),
                exceptions=ExceptionPolicy(
                    owner="hosts",
                    escalation=("managers",),
                    on_timeout=DecisionKind.REJECT,
                    four_eyes=FourEyes(when=Min(field="booking.party_size", value=8, reason="big party")),
                ),
            ),
        ),
    )
    app.source("bookings")
    app.system("pos", Pos())
    async with running_handoffs(client, app, tmp_path, sla_scale=1 / 6) as kit:
        ana, bo = (
            add_operator(kit.ledger, name, ["hosts"], declared_groups=app.catalog.group_names) for name in ("ana", "bo")
        )
        body = {"booking": {"id": f"B-{uuid.uuid4().hex[:8]}", "party_size": 10}, "guest": {"name": "Ada"}}
        accepted = await kit.send("booking.confirmed", body)
        case = await open_case_in_ledger(kit, accepted.workflow_id)
        path = f"/inbox/cases/{case.id}"
        async with serving_url(inbox_app(kit)) as url:
            async with visiting_as(url, ana) as first:
                sent = await first.post(f"{path}/decision", {CSRF_FIELD: await first.csrf(path), **APPROVE})
                waiting = await first.http.get(sent.headers["location"])
            async with visiting_as(url, bo) as second:
                page = await second.http.get(path)
                agreed = await second.post(f"{path}/decision", {CSRF_FIELD: await second.csrf(path), **APPROVE})
        await kit.wait_for_stage(accepted.workflow_id, Stage.DELIVERED)

    assert 'data-testid="first-approval"' in waiting.text
    assert "the first approval, by ana, is kept; it takes effect when a second operator of hosts agrees" in waiting.text
    assert case.id in waiting.text and "first approval: waits for a second operator" in page.text
    assert (303, 303) == (sent.status_code, agreed.status_code)


APPROVE = {"decision": "approve", "reason": "a private room is free"}
