"""`POST /cases/{id}/decision`: an operator's token decides for their group; every refusal has its status and
leaves the case as it was; a refusal the workflow gave is kept in the case's history and the ledger."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from handoff.schemas.cases import DecisionResult, ExceptionCase
from handoff.schemas.runs import Stage
from handoff.workers.testkit import HandoffKit
from tests.api.checks import ledger_reaches, open_case_in_ledger, run_state
from tests.api.conftest import bearer
from tests.runtime import payloads
from tests.runtime.test_refusals import without_refusals


@pytest.fixture
async def reservation_case(api: httpx.AsyncClient, handoffs: HandoffKit) -> ExceptionCase:
    """An open case owned by front-of-house: a party of 14 breaks the size limit and the deposit rule."""
    response = await api.post("/events/reservation.confirmed", json=payloads.reservation(reservation__party_size=14))
    return await open_case_in_ledger(handoffs, response.json()["workflow_id"])


async def refused(
    api: httpx.AsyncClient, handoffs: HandoffKit, case: ExceptionCase, body: Any, headers: dict[str, str]
) -> httpx.Response:
    """Send a decision that must be refused, and check that the run and the ledger are as before: but for the refused
    attempt itself, which the workflow keeps in the case's history (and the ledger) when the decision reached it."""
    before = await run_state(handoffs, case.workflow_id)
    response = await api.post(f"/cases/{case.id}/decision", json=body, headers=headers)
    after = await run_state(handoffs, case.workflow_id)
    assert (without_refusals(before[0]), *before[1:]) == (without_refusals(after[0]), *after[1:])
    return response


async def test_a_correction_by_the_owner_is_200_and_the_run_delivers(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str], reservation_case: ExceptionCase
) -> None:
    """The owner group's operator corrects the party size; the answer is the decided case and the run delivers."""
    response = await api.post(
        f"/cases/{reservation_case.id}/decision",
        json={"decision": "correct", "reason": "guest phoned: 4 people", "patch": {"reservation.party_size": 4}},
        headers=bearer(tokens["hana"]),
    )

    assert 200 == response.status_code
    result = DecisionResult.model_validate(response.json())
    assert result.case.decision is not None
    assert ("validating", "correct", "hana", "front-of-house") == (
        result.next_stage,
        result.case.decision.decision.value,
        result.case.decision.operator,
        result.case.decision.group,
    )
    status = await handoffs.wait_for_stage(reservation_case.workflow_id, Stage.DELIVERED)
    assert 4 == status.payload["reservation"]["party_size"]


async def test_deciding_a_decided_case_is_409(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str], reservation_case: ExceptionCase
) -> None:
    """A case is decided once: a second decision, even by the owner, is a conflict that changes nothing."""
    first = await api.post(
        f"/cases/{reservation_case.id}/decision",
        json={"decision": "reject", "reason": "duplicate booking"},
        headers=bearer(tokens["hana"]),
    )
    await ledger_reaches(handoffs, reservation_case.workflow_id, Stage.REJECTED)

    again = await refused(
        api,
        handoffs,
        reservation_case,
        {"decision": "approve", "reason": "changed my mind"},
        bearer(tokens["hana"]),
    )

    assert (200, 409, "already-decided") == (first.status_code, again.status_code, again.json()["kind"])


async def test_no_token_or_an_unknown_token_is_401_with_www_authenticate(
    api: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    handoffs: HandoffKit,
    tokens: dict[str, str],
    reservation_case: ExceptionCase,
) -> None:
    """Without a valid bearer token nobody decides; the answer says how to authenticate."""
    body = {"decision": "approve", "reason": "looks fine"}

    missing = await refused(anonymous, handoffs, reservation_case, body, {})
    unknown = await refused(api, handoffs, reservation_case, body, bearer("not-a-token"))
    wrong_scheme = await refused(
        anonymous, handoffs, reservation_case, body, {"Authorization": f"Basic {tokens['hana']}"}
    )

    assert [(401, "Bearer"), (401, 'Bearer error="invalid_token"'), (401, "Bearer")] == [
        (r.status_code, r.headers["www-authenticate"]) for r in (missing, unknown, wrong_scheme)
    ]
    assert "Authorization: Bearer <token>" in missing.json()["detail"]


async def test_an_operator_outside_the_owner_group_is_403(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str], reservation_case: ExceptionCase
) -> None:
    """A kitchen lead may not decide a front-of-house case: 403 with the workflow's own words; the case keeps the
    refused attempt."""
    response = await refused(
        api, handoffs, reservation_case, {"decision": "approve", "reason": "x"}, bearer(tokens["chef"])
    )

    assert (403, "not-owner") == (response.status_code, response.json()["kind"])
    assert "it is owned by 'front-of-house' now" in response.json()["detail"]
    audited = (await api.get(f"/cases/{reservation_case.id}")).json()["refused"]
    assert [("approve", "chef", response.json()["detail"])] == [
        (r["decision"], r["operator"], r["refusal"]) for r in audited
    ]


async def test_a_decision_the_contract_does_not_allow_is_422(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """lead-to-invoice never approves bad data as it is: an approve by its owner is refused, naming the allowed."""
    sent = await api.post("/events/deal.won", json=payloads.deal(deal__currency="CHF"))
    case = await open_case_in_ledger(handoffs, sent.json()["workflow_id"])

    response = await refused(api, handoffs, case, {"decision": "approve", "reason": "fine"}, bearer(tokens["sam"]))

    assert (422, "not-allowed") == (response.status_code, response.json()["kind"])
    assert "(allowed: correct, reject, retry)" in response.json()["detail"]


async def test_an_invalid_correction_is_422_naming_the_field(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str], reservation_case: ExceptionCase
) -> None:
    """A correction of a field the payload lacks, or with a value of the wrong type, is refused."""
    no_field = await refused(
        api,
        handoffs,
        reservation_case,
        {"decision": "correct", "reason": "fix", "patch": {"reservation.covers": 4}},
        bearer(tokens["hana"]),
    )
    wrong_type = await refused(
        api,
        handoffs,
        reservation_case,
        {"decision": "correct", "reason": "fix", "patch": {"reservation.party_size": "four"}},
        bearer(tokens["hana"]),
    )

    assert [(422, "invalid-correction"), (422, "invalid-correction")] == [
        (r.status_code, r.json()["kind"]) for r in (no_field, wrong_type)
    ]
    assert "Cannot correct 'reservation.covers'" in no_field.json()["detail"]
    assert "reservation.party_size: Input should be a valid integer" in wrong_type.json()["detail"]


async def test_bad_decision_bodies_are_refused_with_field_errors(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str], reservation_case: ExceptionCase
) -> None:
    """An empty reason, wrong types and broken JSON are refused before anything reaches the run."""
    headers = bearer(tokens["hana"])
    empty_reason = await refused(api, handoffs, reservation_case, {"decision": "reject", "reason": "  "}, headers)
    wrong_types = await refused(
        api, handoffs, reservation_case, {"decision": "maybe", "reason": 5, "patch": []}, headers
    )
    before = await run_state(handoffs, reservation_case.workflow_id)
    malformed = await api.post(
        f"/cases/{reservation_case.id}/decision",
        content=b'{"decision": "reject", "reason": ',
        headers={**headers, "content-type": "application/json"},
    )

    assert (422, [("reason", "String should have at least 1 character")]) == (
        empty_reason.status_code,
        [(e["field"], e["message"]) for e in empty_reason.json()["errors"]],
    )
    assert (422, ["decision", "patch", "reason"]) == (
        wrong_types.status_code,
        sorted(e["field"] for e in wrong_types.json()["errors"]),
    )
    assert (422, "malformed-json") == (malformed.status_code, malformed.json()["kind"])
    assert "line 1, column 34" in malformed.json()["detail"]
    assert before == await run_state(handoffs, reservation_case.workflow_id)


async def test_an_unknown_case_is_404(api: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    """A case id the ledger does not know is a 404 that names it."""
    response = await api.post(
        "/cases/C-000000000000/decision", json={"decision": "reject", "reason": "x"}, headers=bearer(tokens["hana"])
    )

    assert (404, "unknown-case") == (response.status_code, response.json()["kind"])
    assert "C-000000000000" in response.json()["detail"]
