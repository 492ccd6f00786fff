"""`POST /cases/decisions`: several open cases of one handoff decided at once, each through its own run with its own
refusal check and audit row; 200 with every case's outcome once the request is well formed, 422 and nothing decided
when it is not."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from handoff.activities.ledger.operators import add_operator
from handoff.activities.ledger.tables import CaseRow, DecisionRow, RefusedDecisionRow
from handoff.schemas.api import BulkDecisionResult
from handoff.schemas.cases import ExceptionCase
from handoff.schemas.runs import Stage
from handoff.workers.testkit import HandoffKit
from tests.api.checks import ledger_reaches, open_case_in_ledger, run_state
from tests.api.conftest import bearer
from tests.runtime import payloads


async def bookings(api: httpx.AsyncClient, handoffs: HandoffKit, count: int) -> list[ExceptionCase]:
    """`count` open cases of reservation-to-pos, owned by front-of-house: parties of 14."""
    sent = [
        (await api.post("/events/reservation.confirmed", json=payloads.reservation(reservation__party_size=14))).json()
        for _ in range(count)
    ]
    return [await open_case_in_ledger(handoffs, answer["workflow_id"]) for answer in sent]


def audit_rows(handoffs: HandoffKit, case_id: str) -> tuple[int, int]:
    """How many decisions and refused attempts the ledger keeps for the case."""
    with Session(handoffs.ledger) as session:
        decisions = session.exec(
            select(func.count()).select_from(DecisionRow).where(DecisionRow.case_id == case_id)
        ).one()
        refusals = session.exec(
            select(func.count()).select_from(RefusedDecisionRow).where(RefusedDecisionRow.case_id == case_id)
        ).one()
    return decisions, refusals


async def test_several_cases_are_each_decided_by_their_own_run(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """hana rejects three bookings at once: 200, each decided by her for front-of-house, each run rejected, each case
    with its own decision row."""
    cases = await bookings(api, handoffs, 3)

    response = await api.post(
        "/cases/decisions",
        json={"case_ids": [c.id for c in cases], "decision": "reject", "reason": "fully booked that night"},
        headers=bearer(tokens["hana"]),
    )

    assert 200 == response.status_code, response.text
    result = BulkDecisionResult.model_validate(response.json())
    assert (3, 0, 0, 0) == (result.decided, result.first_approvals, result.refused, result.failed)
    assert [(c.id, "decided", "reject", "hana", "front-of-house", "rejected") for c in cases] == [
        (
            o.case_id,
            o.outcome,
            o.decision.decision.value if o.decision else None,
            o.decision.operator if o.decision else None,
            o.decision.group if o.decision else None,
            o.next_stage,
        )
        for o in result.outcomes
    ]
    for case in cases:
        await ledger_reaches(handoffs, case.workflow_id, Stage.REJECTED)
    assert [(1, 0)] * 3 == [audit_rows(handoffs, c.id) for c in cases]


async def test_each_case_meets_its_own_refusal_check(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """One request, four fates, in the order named: a free case decided; a case hugo holds refused (held-by-another,
    nothing sent); a case decided before refused by its run (already-decided); an unknown id refused. Still 200."""
    hugo = bearer(
        add_operator(handoffs.ledger, "hugo", ["front-of-house"], declared_groups=handoffs.app.catalog.group_names)
    )
    free, held, earlier = await bookings(api, handoffs, 3)
    await api.post(f"/cases/{held.id}/claim", headers=hugo)
    await api.post(
        f"/cases/{earlier.id}/decision",
        json={"decision": "reject", "reason": "cancelled"},
        headers=bearer(tokens["hana"]),
    )
    await ledger_reaches(handoffs, earlier.workflow_id, Stage.REJECTED)
    held_before = await run_state(handoffs, held.workflow_id)

    response = await api.post(
        "/cases/decisions",
        json={"case_ids": [free.id, held.id, earlier.id, "C-000000000000"], "decision": "approve", "reason": "VIP"},
        headers=bearer(tokens["hana"]),
    )

    assert 200 == response.status_code, response.text
    result = BulkDecisionResult.model_validate(response.json())
    assert (1, 3) == (result.decided, result.refused)
    assert [
        (free.id, "decided", None),
        (held.id, "refused", "held-by-another"),
        (earlier.id, "refused", "already-decided"),
        ("C-000000000000", "refused", "unknown-case"),
    ] == [(o.case_id, o.outcome, o.kind) for o in result.outcomes]
    assert "held by hugo since" in (result.outcomes[1].detail or "")
    assert held_before == await run_state(handoffs, held.workflow_id)
    assert [(1, 0), (0, 0), (1, 0)] == [audit_rows(handoffs, c.id) for c in (free, held, earlier)]


async def test_refusals_by_the_runs_are_audited_case_by_case(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """A chef bulk-approving front-of-house cases: each run refuses him (not-owner) and keeps its own refused
    attempt; a bulk approve of deals, which lead-to-invoice never allows, is refused as not-allowed, each audited."""
    cases = await bookings(api, handoffs, 2)
    deals = [
        await open_case_in_ledger(
            handoffs,
            (await api.post("/events/deal.won", json=payloads.deal(deal__currency="CHF"))).json()["workflow_id"],
        )
        for _ in range(2)
    ]

    by_chef = await api.post(
        "/cases/decisions",
        json={"case_ids": [c.id for c in cases], "decision": "approve", "reason": "tasty"},
        headers=bearer(tokens["chef"]),
    )
    not_allowed = await api.post(
        "/cases/decisions",
        json={"case_ids": [d.id for d in deals], "decision": "approve", "reason": "fine", "handoff": "lead-to-invoice"},
        headers=bearer(tokens["sam"]),
    )

    chef_result = BulkDecisionResult.model_validate(by_chef.json())
    deal_result = BulkDecisionResult.model_validate(not_allowed.json())
    assert [("refused", "not-owner")] * 2 == [(o.outcome, o.kind) for o in chef_result.outcomes]
    assert [("refused", "not-allowed")] * 2 == [(o.outcome, o.kind) for o in deal_result.outcomes]
    assert "(allowed: correct, reject, retry)" in (deal_result.outcomes[0].detail or "")
    assert [(0, 1)] * 4 == [audit_rows(handoffs, c.id) for c in (*cases, *deals)]


@pytest.mark.parametrize(
    ("body", "kind", "words"),
    [
        (
            {"case_ids": [], "decision": "reject", "reason": "r"},
            "invalid-request",
            "case_ids: List should have at least 1",
        ),
        (
            {"case_ids": [f"C-{n:012d}" for n in range(101)], "decision": "reject", "reason": "r"},
            "invalid-request",
            "case_ids: List should have at most 100 items",
        ),
        ({"case_ids": ["C-1", "C-2", "C-1"], "decision": "reject", "reason": "r"}, "invalid-request", "names C-1 more"),
        (
            {"case_ids": ["C-1"], "decision": "correct", "reason": "r"},
            "invalid-request",
            "a correction sets fields of one payload: decide it alone",
        ),
        ({"case_ids": ["C-1"], "decision": "reject", "reason": "  "}, "invalid-request", "reason: String should have"),
        ({"case_ids": ["C-1"], "decision": "reject", "reason": "a\x00b"}, "invalid-request", "reason:"),
        ({"case_ids": ["C-1"], "decision": "reject", "reason": "r", "patch": {}}, "invalid-request", "patch: Extra"),
    ],
    ids=["empty", "over-100", "duplicate", "correction", "blank-reason", "nul-reason", "patch"],
)
async def test_a_malformed_request_is_422_and_decides_nothing(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str], body: dict[str, Any], kind: str, words: str
) -> None:
    """Each malformed request is a 422 naming what is wrong; the case it might have touched stays open."""
    [case] = await bookings(api, handoffs, 1)
    body = {**body, "case_ids": [case.id if i == "C-1" else i for i in body["case_ids"]]}
    before = await run_state(handoffs, case.workflow_id)

    response = await api.post("/cases/decisions", json=body, headers=bearer(tokens["hana"]))

    assert (422, kind) == (response.status_code, response.json()["kind"])
    assert words.replace("C-1", case.id) in response.json()["detail"]
    assert before == await run_state(handoffs, case.workflow_id)


async def test_cases_of_several_handoffs_or_not_of_the_one_named_are_422(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """A booking and a deal in one request, or a booking sent as lead-to-invoice: 422, nothing decided."""
    [booking] = await bookings(api, handoffs, 1)
    sent = await api.post("/events/deal.won", json=payloads.deal(deal__currency="CHF"))
    deal = await open_case_in_ledger(handoffs, sent.json()["workflow_id"])
    hana = bearer(tokens["hana"])

    mixed = await api.post(
        "/cases/decisions", json={"case_ids": [booking.id, deal.id], "decision": "reject", "reason": "r"}, headers=hana
    )
    wrong = await api.post(
        "/cases/decisions",
        json={"case_ids": [booking.id], "decision": "reject", "reason": "r", "handoff": "lead-to-invoice"},
        headers=hana,
    )

    assert [(422, "mixed-handoffs"), (422, "wrong-handoff")] == [
        (r.status_code, r.json()["kind"]) for r in (mixed, wrong)
    ]
    assert f"lead-to-invoice: {deal.id}; reservation-to-pos: {booking.id}" in mixed.json()["detail"]
    assert [(0, 0), (0, 0)] == [audit_rows(handoffs, c.id) for c in (booking, deal)]


async def test_a_case_temporal_cannot_take_is_failed_and_the_others_go_through(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """A case Temporal refuses outright (its ledger row names an empty run id: an invalid argument, not a missing
    run) is a `failed` outcome saying so; the other case of the request is decided all the same."""
    [booking] = await bookings(api, handoffs, 1)
    with Session(handoffs.ledger) as session:
        original = session.get(CaseRow, booking.id)
        assert original is not None
        broken = CaseRow.model_validate(original.model_dump() | {"id": "C-broken", "workflow_id": ""})
        session.add(broken)
        session.commit()

    response = await api.post(
        "/cases/decisions",
        json={"case_ids": ["C-broken", booking.id], "decision": "reject", "reason": "r"},
        headers=bearer(tokens["hana"]),
    )

    result = BulkDecisionResult.model_validate(response.json())
    assert (200, 1, 1) == (response.status_code, result.decided, result.failed)
    assert ("failed", "temporal-error") == (result.outcomes[0].outcome, result.outcomes[0].kind)
    assert "read the case before sending it again" in (result.outcomes[0].detail or "")


async def test_only_operators_decide_in_bulk(api: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    """A viewer or an administrator gets 403 wrong-role."""
    body = {"case_ids": ["C-000000000000"], "decision": "reject", "reason": "r"}

    viewer = await api.post("/cases/decisions", json=body, headers=bearer(tokens["vera"]))
    administrator = await api.post("/cases/decisions", json=body)

    assert [(403, "wrong-role")] * 2 == [(r.status_code, r.json()["kind"]) for r in (viewer, administrator)]
