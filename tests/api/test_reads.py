"""Reading over HTTP: open cases with filters, one case in full, runs live or from the ledger, report, health, docs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import create_engine
from sqlmodel import Session

from examples.restaurant import reservation_to_pos
from handoff.activities.authorisation import attest
from handoff.activities.ledger.operators import add_operator
from handoff.activities.ledger.tables import RunRow
from handoff.schemas.api import CaseDetail, CaseSummary, RunDetail, RunSummary
from handoff.schemas.cases import DecisionRequest
from handoff.schemas.contract import DecisionKind
from handoff.schemas.operators import Role
from handoff.schemas.report import Report
from handoff.schemas.runs import Stage
from handoff.workers.api import create_app
from handoff.workers.testkit import HandoffKit
from tests.api.checks import open_case_in_ledger
from tests.api.conftest import serving
from tests.runtime import payloads


async def test_open_cases_are_listed_and_filtered_by_group_and_handoff(
    api: httpx.AsyncClient, handoffs: HandoffKit
) -> None:
    """Each open case shows its owner, SLA and broken rules; `group` and `handoff` narrow the list."""
    booking = (
        await api.post("/events/reservation.confirmed", json=payloads.reservation(reservation__party_size=14))
    ).json()
    deal = (await api.post("/events/deal.won", json=payloads.deal(deal__currency="CHF"))).json()
    booking_case = await open_case_in_ledger(handoffs, booking["workflow_id"])
    deal_case = await open_case_in_ledger(handoffs, deal["workflow_id"])

    everything = [CaseSummary.model_validate(c) for c in (await api.get("/cases")).json()]
    by_group = (await api.get("/cases", params={"group": "sales-ops"})).json()
    by_handoff = (await api.get("/cases", params={"handoff": "reservation-to-pos"})).json()

    assert {booking_case.id, deal_case.id} == {c.id for c in everything}
    assert ([deal_case.id], [booking_case.id]) == ([c["id"] for c in by_group], [c["id"] for c in by_handoff])
    listed = next(c for c in everything if c.id == booking_case.id)
    assert (
        "front-of-house",
        ["reservation.party_size <= 12", "if reservation.party_size >= 8 then reservation.deposit_cents >= 1"],
    ) == (listed.owner_group, listed.violations)
    assert listed.age_seconds >= 0 and 0 < listed.sla_left_seconds <= 60


async def test_a_case_reads_in_full_with_its_refused_attempts(api: httpx.AsyncClient, handoffs: HandoffKit) -> None:
    """One case: violations with values and reasons, the payload snapshot, and a refused signal decision."""
    body = payloads.reservation(reservation__party_size=14)
    sent = (await api.post("/events/reservation.confirmed", json=body)).json()
    case = await open_case_in_ledger(handoffs, sent["workflow_id"])
    await handoffs.client.get_workflow_handle(sent["workflow_id"]).signal(
        "decision",
        attest(  # a real operator's attested decision, sent as a signal: refused for his group, not his signature
            DecisionRequest(
                case_id=case.id,
                decision=DecisionKind.APPROVE,
                operator="chef",
                operator_groups=("kitchen-leads",),
                reason="hungry",
            ),
            handoffs.decision_key,
        ),
    )
    refused = await _eventually(api, f"/cases/{case.id}", lambda answer: bool(answer["refused"]))

    detail = CaseDetail.model_validate(refused)
    assert (Stage.AWAITING_DECISION, "open", None) == (detail.run_stage, detail.status.value, detail.decision)
    assert [("reservation.party_size", 14), ("reservation.deposit_cents", 0)] == [
        (v.field, v.value) for v in detail.violations
    ]
    assert body["reservation"]["id"] == detail.payload["reservation"]["id"]
    assert [("approve", "chef")] == [(r.decision, r.operator) for r in detail.refused]
    assert "owned by 'front-of-house'" in detail.refused[0].refusal
    missing = await api.get("/cases/C-nope")
    assert (404, "No case 'C-nope' in the ledger.") == (missing.status_code, missing.json()["detail"])


async def test_an_escalated_case_shows_the_chain_and_the_contracts_decision(kit: HandoffKit) -> None:
    """With one-second SLAs the case passes to the managers, then the contract rejects it; the case shows both."""
    token = add_operator(kit.ledger, "ada", [], declared_groups=[], role=Role.ADMINISTRATOR)
    async with serving(create_app(kit.settings, kit.app, client=kit.client, ledger=kit.ledger), token) as api:
        sent = (
            await api.post("/events/reservation.confirmed", json=payloads.reservation(reservation__party_size=14))
        ).json()
        status = await kit.wait_for_stage(sent["workflow_id"], Stage.REJECTED)
        case = status.cases[0]
        answer = await _eventually(api, f"/cases/{case.id}", lambda found: found["run_stage"] == "rejected")

    detail = CaseDetail.model_validate(answer)
    assert [("front-of-house", "restaurant-managers")] == [(e.from_group, e.to_group) for e in detail.escalations]
    assert detail.decision is not None
    assert ("reject", "contract", True) == (
        detail.decision.decision.value,
        detail.decision.operator,
        detail.decision.by_timeout,
    )


async def test_runs_are_listed_and_one_is_read_live_by_its_slashed_id(
    api: httpx.AsyncClient, handoffs: HandoffKit
) -> None:
    """`/runs` filters by handoff and stage; `/runs/<handoff>/<key>` answers the live status query."""
    good = (await api.post("/events/reservation.confirmed", json=payloads.reservation())).json()
    held = (
        await api.post("/events/reservation.confirmed", json=payloads.reservation(reservation__party_size=14))
    ).json()
    await handoffs.wait_for_stage(good["workflow_id"], Stage.DELIVERED)
    await open_case_in_ledger(handoffs, held["workflow_id"])
    await _eventually(api, "/runs", lambda runs: {r["stage"] for r in runs} == {"delivered", "awaiting-decision"})

    waiting = [
        RunSummary.model_validate(r) for r in (await api.get("/runs", params={"stage": "awaiting-decision"})).json()
    ]
    limited = (await api.get("/runs", params={"handoff": "reservation-to-pos", "limit": 1})).json()
    other = (await api.get("/runs", params={"handoff": "order-to-kitchen"})).json()
    live = await api.get(f"/runs/{held['workflow_id']}")

    assert ([(held["workflow_id"], 1)], 1, []) == ([(r.workflow_id, r.cases) for r in waiting], len(limited), other)
    detail = RunDetail.model_validate(live.json())
    assert ("temporal", Stage.AWAITING_DECISION, held["workflow_id"]) == (
        detail.source,
        detail.status.stage,
        detail.run.workflow_id if detail.run else None,
    )
    bad_stage = await api.get("/runs", params={"stage": "lost"})
    assert (422, "query.stage") == (bad_stage.status_code, bad_stage.json()["errors"][0]["field"])


async def test_a_run_temporal_no_longer_has_is_read_from_the_ledger(
    api: httpx.AsyncClient, handoffs: HandoffKit
) -> None:
    """A run past Temporal's retention still answers, from the ledger; a run nobody knows is a 404."""
    received = datetime(2025, 1, 2, 19, 0, tzinfo=UTC)
    with Session(handoffs.ledger) as session:
        session.add(
            RunRow(
                workflow_id="reservation-to-pos/R-OLD",
                handoff="reservation-to-pos",
                event="reservation.confirmed",
                dedupe_key="R-OLD",
                contract_version=1,
                contract_hash="0123456789abcdef",
                stage="delivered",
                last_step=3,
                payload={"reservation": {"id": "R-OLD"}},
                received_at=received,
                updated_at=received,
                finished_at=received,
            )
        )
        session.commit()

    old = await api.get("/runs/reservation-to-pos/R-OLD")
    encoded = await api.get("/runs/reservation-to-pos%2FR-OLD")  # as Swagger UI sends a slashed id
    unknown = await api.get("/runs/reservation-to-pos/R-NEVER")

    detail = RunDetail.model_validate(old.json())
    assert (200, "ledger", Stage.DELIVERED, {"reservation": {"id": "R-OLD"}}) == (
        old.status_code,
        detail.source,
        detail.status.stage,
        detail.status.payload,
    )
    assert old.json() == encoded.json()
    assert (404, "unknown-run") == (unknown.status_code, unknown.json()["kind"])


async def test_report_has_a_line_per_handoff(api: httpx.AsyncClient, handoffs: HandoffKit) -> None:
    """`/report` counts the delivered run and sets each handoff against its declared gain."""
    sent = (await api.post("/events/reservation.confirmed", json=payloads.reservation())).json()
    await handoffs.wait_for_stage(sent["workflow_id"], Stage.DELIVERED)
    answer = await _eventually(api, "/report", lambda report: report["handoffs"][0]["delivered"] == 1)

    report = Report.model_validate(answer)
    pos = report.handoffs[0]
    assert ("reservation-to-pos", 1, 1, 0.0) == (pos.handoff, pos.runs, pos.cycle_time.count, pos.exception_rate_pct)
    assert ["reservation-to-pos", "lead-to-invoice", "order-to-kitchen"] == [h.handoff for h in report.handoffs]


async def test_report_by_version_splits_each_handoff_by_the_contract_version_of_its_runs(
    api: httpx.AsyncClient, handoffs: HandoffKit
) -> None:
    """`/report?by_version=true` gives a line per version under the total; plain `/report` gives none."""
    sent = (await api.post("/events/reservation.confirmed", json=payloads.reservation())).json()
    await handoffs.wait_for_stage(sent["workflow_id"], Stage.DELIVERED)
    received = datetime(2025, 1, 2, 19, 0, tzinfo=UTC)
    current = reservation_to_pos.CONTRACT.version
    later = current + 1
    with Session(handoffs.ledger) as session:  # a run of a later version this app has not shipped
        session.add(
            RunRow(
                workflow_id="reservation-to-pos/R-V2",
                handoff="reservation-to-pos",
                event="reservation.confirmed",
                dedupe_key="R-V2",
                contract_version=later,
                contract_hash="0123456789abcdef",
                stage="rejected",
                payload={},
                received_at=received,
                updated_at=received,
                finished_at=received,
            )
        )
        session.commit()

    answer = await _eventually(
        api, "/report?by_version=true", lambda report: report["handoffs"][0]["versions"][0]["delivered"] == 1
    )
    plain = Report.model_validate((await api.get("/report")).json())

    pos = Report.model_validate(answer).handoffs[0]
    assert (2, 1, 1) == (pos.runs, pos.delivered, pos.rejected)
    assert [(current, 1, 1, 0), (later, 1, 0, 1)] == [
        (line.contract_version, line.runs, line.delivered, line.rejected) for line in pos.versions
    ]
    assert [[], [], []] == [line.versions for line in plain.handoffs]


async def test_healthz_is_200_when_all_answer_and_503_when_the_ledger_does_not(handoffs: HandoffKit) -> None:
    """Health checks the ledger and Temporal for real, and says which one failed."""
    unreachable = create_engine("sqlite:////nonexistent-directory/ledger.db")
    async with serving(
        create_app(handoffs.settings, handoffs.app, client=handoffs.client, ledger=handoffs.ledger)
    ) as api:
        healthy = await api.get("/healthz")
    async with serving(create_app(handoffs.settings, handoffs.app, client=handoffs.client, ledger=unreachable)) as api:
        broken = await api.get("/healthz")
    unreachable.dispose()

    assert (200, {"status": "ok", "ledger": "ok", "temporal": "ok"}) == (healthy.status_code, healthy.json())
    assert (503, "unavailable", "ok") == (broken.status_code, broken.json()["status"], broken.json()["temporal"])
    assert broken.json()["ledger"].startswith("unreachable: OperationalError")


async def test_openapi_describes_every_route_and_docs_are_served(api: httpx.AsyncClient) -> None:
    """`/openapi.json` lists every route with its models; `/docs` serves the interactive page."""
    spec = (await api.get("/openapi.json")).json()
    docs = await api.get("/docs")

    assert {
        "/events/{event}",
        "/cases",
        "/cases/{case_id}",
        "/cases/{case_id}/decision",
        "/cases/{case_id}/claim",
        "/cases/{case_id}/release",
        "/cases/{case_id}/reassign",
        "/cases/{case_id}/comments",
        "/cases/{case_id}/history",
        "/cases/decisions",
        "/runs",
        "/runs/{workflow_id}",
        "/report",
        "/healthz",
        "/codec/encode",
        "/codec/decode",
        "/budget",
        "/handoffs/{name}/resume",
        "/handoffs/{name}/reject-held",
    } == set(spec["paths"])  # the inbox's HTML pages are not part of the API's document
    assert {"401", "403", "404", "409", "422"} <= set(spec["paths"]["/cases/{case_id}/decision"]["post"]["responses"])
    assert (200, True) == (docs.status_code, "swagger-ui" in docs.text)


async def _eventually(api: httpx.AsyncClient, path: str, done: Callable[[Any], bool], attempts: int = 100) -> Any:
    """GET `path` until `done(answer)`: the ledger is written just after Temporal moves on."""
    answer: Any = None
    for _ in range(attempts):
        answer = (await api.get(path)).json()
        if done(answer):
            return answer
        await asyncio.sleep(0.05)
    raise AssertionError(f"GET {path} never satisfied the condition; last answer: {answer}")
