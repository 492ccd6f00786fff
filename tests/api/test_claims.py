"""Claim, release, reassign, comment and history over HTTP, against a real server and worker: the group sees who
holds a case, a held case is its holder's (to claim and to decide: 409 naming them), a decided case holds nobody,
and every refusal has its status and `kind` and changes nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from handoff.activities.ledger.operators import add_operator
from handoff.schemas.api import CaseDetail, CaseSummary
from handoff.schemas.case_history import CaseClaim, CaseEvent
from handoff.schemas.cases import ExceptionCase
from handoff.schemas.runs import Stage
from handoff.workers.testkit import HandoffKit
from tests.api.checks import ledger_reaches, open_case_in_ledger, run_state
from tests.api.conftest import bearer
from tests.runtime import payloads

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
CLAIMS_ROUTES = {
    ("POST", "/cases/{case_id}/claim"),
    ("POST", "/cases/{case_id}/release"),
    ("POST", "/cases/{case_id}/reassign"),
    ("POST", "/cases/{case_id}/comments"),
    ("GET", "/cases/{case_id}/history"),
    ("POST", "/cases/decisions"),
}


@pytest.fixture
def hugo(handoffs: HandoffKit, tokens: dict[str, str]) -> dict[str, str]:
    """A second front-of-house host's token headers (hana is the first)."""
    return bearer(
        add_operator(handoffs.ledger, "hugo", ["front-of-house"], declared_groups=handoffs.app.catalog.group_names)
    )


@pytest.fixture
async def booking(api: httpx.AsyncClient, handoffs: HandoffKit) -> ExceptionCase:
    """An open case owned by front-of-house: a party of 14."""
    response = await api.post("/events/reservation.confirmed", json=payloads.reservation(reservation__party_size=14))
    return await open_case_in_ledger(handoffs, response.json()["workflow_id"])


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["kind"]


async def test_a_claim_is_shown_in_the_list_the_case_and_its_history(
    api: httpx.AsyncClient, tokens: dict[str, str], booking: ExceptionCase
) -> None:
    """hana claims the case (200, the claim); claiming it again changes nothing; `GET /cases`, `GET /cases/{id}` and
    its history show her as the holder."""
    hana = bearer(tokens["hana"])

    first = await api.post(f"/cases/{booking.id}/claim", headers=hana)
    again = await api.post(f"/cases/{booking.id}/claim", headers=hana)
    listed = [CaseSummary.model_validate(c) for c in (await api.get("/cases")).json()]
    detail = CaseDetail.model_validate((await api.get(f"/cases/{booking.id}")).json())
    history = [CaseEvent.model_validate(e) for e in (await api.get(f"/cases/{booking.id}/history")).json()]

    claim, repeat = CaseClaim.model_validate(first.json()), CaseClaim.model_validate(again.json())
    assert (200, 200) == (first.status_code, again.status_code)
    assert ("hana", True, "hana", False, claim.claimed_at) == (
        claim.claimed_by,
        claim.changed,
        repeat.claimed_by,
        repeat.changed,
        repeat.claimed_at,
    )
    assert [("hana", claim.claimed_at)] == [(c.claimed_by, c.claimed_at) for c in listed if c.id == booking.id]
    assert ("hana", claim.claimed_at) == (detail.claimed_by, detail.claimed_at)
    assert [("opened", None, "front-of-house"), ("claimed", "hana", None)] == [
        (e.kind.value, e.operator, e.to_group) for e in history
    ]
    assert history == detail.history


async def test_a_held_case_is_refused_to_another_host_and_decided_only_by_its_holder(
    api: httpx.AsyncClient,
    handoffs: HandoffKit,
    tokens: dict[str, str],
    hugo: dict[str, str],
    booking: ExceptionCase,
) -> None:
    """hugo may not claim, release, nor decide hana's case (409 held-by-another, naming her; nothing reaches the run,
    so no refused attempt either); hana decides it, and then it holds nobody and says who decided."""
    hana = bearer(tokens["hana"])
    await api.post(f"/cases/{booking.id}/claim", headers=hana)
    before = await run_state(handoffs, booking.workflow_id)

    claimed = await api.post(f"/cases/{booking.id}/claim", headers=hugo)
    released = await api.post(f"/cases/{booking.id}/release", headers=hugo)
    decided = await api.post(
        f"/cases/{booking.id}/decision", json={"decision": "approve", "reason": "VIP"}, headers=hugo
    )

    assert [(409, "held-by-another")] * 3 == [error(r) for r in (claimed, released, decided)]
    assert all("held by hana since" in r.json()["detail"] for r in (claimed, released, decided))
    assert "only hana decides it while they hold it" in decided.json()["detail"]
    assert before == await run_state(handoffs, booking.workflow_id)

    by_holder = await api.post(
        f"/cases/{booking.id}/decision", json={"decision": "reject", "reason": "no table"}, headers=hana
    )
    await ledger_reaches(handoffs, booking.workflow_id, Stage.REJECTED)
    detail = CaseDetail.model_validate((await api.get(f"/cases/{booking.id}")).json())
    claim_after = await api.post(f"/cases/{booking.id}/claim", headers=hana)

    assert 200 == by_holder.status_code
    assert detail.decision is not None
    assert (None, None, "hana") == (detail.claimed_by, detail.claimed_at, detail.decision.operator)
    assert ("decided", "hana", "reject") == (
        detail.history[-1].kind.value,
        detail.history[-1].operator,
        detail.history[-1].decision,
    )
    assert (409, "already-decided") == error(claim_after)
    assert "is decided (reject by hana at" in claim_after.json()["detail"]


async def test_the_holder_releases_or_hands_the_case_on_within_the_group(
    api: httpx.AsyncClient, tokens: dict[str, str], hugo: dict[str, str], booking: ExceptionCase
) -> None:
    """hana hands her case to hugo, who releases it; a free case may be handed on by anyone of the group; to a chef,
    a viewer or a name nobody has is a 422 bad-assignee, and a bad body a 422 naming the field."""
    hana = bearer(tokens["hana"])
    await api.post(f"/cases/{booking.id}/claim", headers=hana)

    handed = await api.post(f"/cases/{booking.id}/reassign", json={"to": "hugo"}, headers=hana)
    hers_no_more = await api.post(f"/cases/{booking.id}/release", headers=hana)
    released = await api.post(f"/cases/{booking.id}/release", headers=hugo)
    released_again = await api.post(f"/cases/{booking.id}/release", headers=hugo)
    assigned = await api.post(f"/cases/{booking.id}/reassign", json={"to": "hana"}, headers=hugo)
    to_chef = await api.post(f"/cases/{booking.id}/reassign", json={"to": "chef"}, headers=hana)
    to_viewer = await api.post(f"/cases/{booking.id}/reassign", json={"to": "vera"}, headers=hana)
    to_nobody = await api.post(f"/cases/{booking.id}/reassign", json={"to": "nobody"}, headers=hana)
    no_name = await api.post(f"/cases/{booking.id}/reassign", json={"to": " ", "as": "x"}, headers=hana)

    assert [200, 409, 200, 200, 200] == [
        r.status_code for r in (handed, hers_no_more, released, released_again, assigned)
    ]
    assert [("hugo", True), (None, True), (None, False), ("hana", True)] == [
        (CaseClaim.model_validate(r.json()).claimed_by, CaseClaim.model_validate(r.json()).changed)
        for r in (handed, released, released_again, assigned)
    ]
    assert [(422, "bad-assignee")] * 3 == [error(r) for r in (to_chef, to_viewer, to_nobody)]
    assert "chef (kitchen-leads) is not in 'front-of-house'" in to_chef.json()["detail"]
    assert (422, ["as", "to"]) == (no_name.status_code, sorted(e["field"] for e in no_name.json()["errors"]))
    history = (await api.get(f"/cases/{booking.id}/history")).json()
    assert [
        ("claimed", "hana", None),
        ("reassigned", "hana", "hugo"),
        ("released", "hugo", None),
        ("reassigned", "hugo", "hana"),
    ] == [(e["kind"], e["operator"], e["to_operator"]) for e in history[1:]]


async def test_the_group_comments_and_bad_comments_are_refused(
    api: httpx.AsyncClient, tokens: dict[str, str], hugo: dict[str, str], booking: ExceptionCase
) -> None:
    """hugo comments on hana's case (201, the history line); a chef may not (403 not-owner); an empty, too long or
    NUL comment is a 422 naming `text` (too long as sent, even if trimming would shorten it: the document's maxLength);
    the history keeps only the good one, trimmed."""
    await api.post(f"/cases/{booking.id}/claim", headers=bearer(tokens["hana"]))

    added = await api.post(f"/cases/{booking.id}/comments", json={"text": " guest asks for the terrace "}, headers=hugo)
    by_chef = await api.post(f"/cases/{booking.id}/comments", json={"text": "yum"}, headers=bearer(tokens["chef"]))
    bad = [
        await api.post(f"/cases/{booking.id}/comments", json={"text": text}, headers=hugo)
        for text in ("  ", "x" * 2001, "a\x00b", "x" * 1999 + "   ")  # too long as sent, though not once trimmed
    ]

    note = CaseEvent.model_validate(added.json())
    assert (201, "commented", "hugo", "guest asks for the terrace") == (
        added.status_code,
        note.kind.value,
        note.operator,
        note.text,
    )
    assert (403, "not-owner") == error(by_chef)
    assert [(422, ["text"])] * 4 == [(r.status_code, [e["field"] for e in r.json()["errors"]]) for r in bad]
    assert "NUL" in bad[2].json()["detail"]
    history = (await api.get(f"/cases/{booking.id}/history", headers=bearer(tokens["vera"]))).json()
    assert [("commented", "hugo", "guest asks for the terrace")] == [
        (e["kind"], e["operator"], e["text"]) for e in history if e["kind"] == "commented"
    ]


async def test_an_unknown_case_is_404_and_readers_who_are_not_operators_are_403(
    api: httpx.AsyncClient, tokens: dict[str, str], booking: ExceptionCase
) -> None:
    """Every route names the case it does not know; a viewer or an administrator may read the history but claim
    nothing (403 wrong-role)."""
    hana = bearer(tokens["hana"])
    unknown = [
        await api.post("/cases/C-000000000000/claim", headers=hana),
        await api.post("/cases/C-000000000000/release", headers=hana),
        await api.post("/cases/C-000000000000/reassign", json={"to": "hana"}, headers=hana),
        await api.post("/cases/C-000000000000/comments", json={"text": "hi"}, headers=hana),
        await api.get("/cases/C-000000000000/history", headers=hana),
    ]
    by_viewer = await api.post(f"/cases/{booking.id}/claim", headers=bearer(tokens["vera"]))
    by_administrator = await api.post(f"/cases/{booking.id}/comments", json={"text": "hi"})
    read_by_administrator = await api.get(f"/cases/{booking.id}/history")

    assert [(404, "unknown-case")] * 5 == [error(r) for r in unknown]
    assert all("No case 'C-000000000000' in the ledger." == r.json()["detail"] for r in unknown)
    assert [(403, "wrong-role")] * 2 == [error(r) for r in (by_viewer, by_administrator)]
    assert 200 == read_by_administrator.status_code


async def test_the_document_declares_what_each_route_answers(api: httpx.AsyncClient) -> None:
    """Each claims route declares its statuses (with Handoff's error shape), its roles and its answer's model."""
    document = (await api.get("/openapi.json")).json()

    def declared(method: str, path: str) -> dict[str, Any]:
        operation = document["paths"][path][method]
        return {
            "statuses": sorted(operation["responses"]),
            "roles": operation["security"][0]["ApiToken"],
        }

    # FastAPI declares a 422 for every route with a parameter; Handoff's document gives it the error shape.
    operator_acts = ["200", "401", "403", "404", "409", "422", "429", "503"]
    assert {
        ("post", "/cases/{case_id}/claim"): {"statuses": operator_acts, "roles": ["operator"]},
        ("post", "/cases/{case_id}/release"): {"statuses": operator_acts, "roles": ["operator"]},
        ("post", "/cases/{case_id}/reassign"): {"statuses": sorted([*operator_acts, "413"]), "roles": ["operator"]},
        ("post", "/cases/{case_id}/comments"): {
            "statuses": ["201", "401", "403", "404", "413", "422", "429", "503"],
            "roles": ["operator"],
        },
        ("get", "/cases/{case_id}/history"): {
            "statuses": ["200", "401", "403", "404", "422", "429", "503"],
            "roles": ["viewer", "operator", "administrator"],
        },
        ("post", "/cases/decisions"): {
            "statuses": ["200", "401", "403", "413", "422", "429", "503"],
            "roles": ["operator"],
        },
    } == {(method, path): declared(method, path) for method, path in _claims_operations()}
    schemas = {
        path: document["paths"][path]["post"]["responses"]["409"]["content"]["application/json"]["schema"]["$ref"]
        for path in ("/cases/{case_id}/claim", "/cases/{case_id}/decision")
    }
    assert {"#/components/schemas/ErrorBody"} == set(schemas.values())
    assert (
        "held-by-another" in document["paths"]["/cases/{case_id}/decision"]["post"]["responses"]["409"]["description"]
    )


async def test_generated_requests_answer_as_the_document_declares(
    api_url: str, tokens: dict[str, str], booking: ExceptionCase
) -> None:
    """Schemathesis sends valid and invalid requests to each claims route, for the case that exists (by an operator
    of its group) and for generated ids: never a 5xx, and every answer is one the document declares."""
    async with httpx.AsyncClient(base_url=api_url) as http:
        document = (await http.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(
        document, config=schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    )
    hana, vera = bearer(tokens["hana"]), bearer(tokens["vera"])

    for method, path in sorted(CLAIMS_ROUTES):
        operation = schema[path][method]
        headers = vera if method == "GET" else hana
        cases = [{}, {"case_id": booking.id}] if "{case_id}" in path else [{}]
        # A route whose only parameter is a text (any case id) cannot be sent an invalid request without a body.
        modes = [GenerationMode.NEGATIVE] if "requestBody" in operation.definition.raw else []
        for parameters in cases:
            for mode in (*modes, GenerationMode.POSITIVE):
                strategy = operation.as_strategy(mode, path_parameters=parameters or None)
                await asyncio.to_thread(_exchange, api_url, strategy, headers)


def _exchange(api_url: str, strategy: st.SearchStrategy[Any], headers: dict[str, str]) -> None:
    """Send a few generated requests and check each answer against the document."""

    @settings(
        max_examples=8,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=strategy)
    def exchange(case: Any) -> None:
        case.call_and_validate(base_url=api_url, session=session, headers=headers, checks=CHECKS)

    with requests.Session() as session:
        exchange()


def _claims_operations() -> list[tuple[str, str]]:
    return sorted((method.lower(), path) for method, path in CLAIMS_ROUTES)
