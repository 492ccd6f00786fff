"""Personal data in reads: the fields a contract marks personal are masked for everyone but the operators of the
group that owns the case (the pure rules first, then over HTTP on a real server), and a purged run reads without
its payloads even while Temporal still has them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from handoff.activities.ledger.purge import purge_runs
from handoff.schemas.api import CaseDetail, RunDetail
from handoff.schemas.cases import (
    CaseStatus,
    DecisionRecord,
    DecisionRequest,
    ExceptionCase,
    RefusedDecision,
    Violation,
)
from handoff.schemas.contract import DecisionKind
from handoff.schemas.operators import Operator, Role
from handoff.schemas.runs import Delivery, HandoffStatus, Stage
from handoff.workers.masking import MASK, PersonalData, shown_run
from handoff.workers.testkit import HandoffKit
from tests.api.checks import ledger_reaches, open_case_in_ledger
from tests.api.conftest import bearer
from tests.runtime import payloads
from tests.workflows.sample_contracts import NAME, ready_contract

T0 = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
PAYLOAD = {
    "booking": {"id": "B-1", "party_size": 14, "starts_at": "2026-12-04T19:30:00"},
    "guest": {"name": "Ada Lovelace", "phone": None, "address": {"street": "1 St James's Sq", "city": "London"}},
}


def _someone(role: Role, *groups: str) -> Operator:
    return Operator(name="someone", groups=groups, created_at=T0, role=role)


def _status(*, with_case: bool = True) -> HandoffStatus:
    """A sample run carrying personal data everywhere a run can: payload, case, violations (a comparison's too),
    a correction, a refused correction, a delivery."""
    patch = {"guest.name": "Ada King", "booking.party_size": 4}
    request = DecisionRequest(case_id="C-1", decision=DecisionKind.CORRECT, operator="chef", reason="r", patch=patch)
    refused = RefusedDecision(request=request, refusal="not your group", at=T0)
    case = ExceptionCase(
        id="C-1",
        handoff=NAME,
        workflow_id=f"{NAME}/B-1",
        violations=[
            Violation(rule="party <= 12", kind="max", field="booking.party_size", value=14, reason="r"),
            Violation(rule="a name", kind="pattern", field="guest.name", value="Ada Lovelace", reason="r"),
            Violation(rule="phone", kind="required", field="guest.phone", value=None, reason="r"),
            Violation(
                rule="party <= name",
                kind="compare",
                field="booking.party_size",
                value={"booking.party_size": 14, "guest.name": "Ada Lovelace"},
                reason="r",
            ),
        ],
        payload=PAYLOAD,
        owner_group="hosts",
        opened_at=T0,
        sla_deadline=T0 + timedelta(minutes=30),
        allowed=list(DecisionKind),
        status=CaseStatus.DECIDED,
        decision=DecisionRecord(
            case_id="C-1",
            decision=DecisionKind.CORRECT,
            operator="hana",
            group="hosts",
            reason="called",
            patch=patch,
            decided_at=T0,
        ),
        refused=[refused],
    )
    return HandoffStatus(
        handoff=NAME,
        workflow_id=f"{NAME}/B-1",
        contract_version=1,
        contract_hash="c0ffee",
        stage=Stage.DELIVERED,
        payload=PAYLOAD,
        cases=[case] if with_case else [],
        deliveries=[
            Delivery(
                system="pos",
                record_key="B-1",
                fields={"booking_ref": "B-1", "booking_party_size": 4, "guest_name": "Ada King"},
                delivered_at=T0,
            )
        ],
        unmatched_refusals=[refused],
    )


def _shown(status: HandoffStatus, caller: Operator | None, personal: PersonalData, **options: Any) -> HandoffStatus:
    return shown_run(RunDetail(source="ledger", status=status), caller=caller, personal=personal, **options).status


def test_personal_values_are_masked_wherever_a_run_carries_them_and_their_keys_stay() -> None:
    """guest.name is masked in the payload, the case, its violations (a comparison's side too), the correction,
    the refused correction and the delivery (as 'guest_name'); other fields, and an absent phone, stay as they are."""
    personal = PersonalData([ready_contract(personal=("guest.name", "guest.phone"))])

    shown = _shown(_status(), _someone(Role.VIEWER), personal)

    masked_guest = {**PAYLOAD["guest"], "name": MASK}
    assert {**PAYLOAD, "guest": masked_guest} == shown.payload
    case = shown.cases[0]
    assert {**PAYLOAD, "guest": masked_guest} == case.payload
    assert [14, MASK, None, {"booking.party_size": 14, "guest.name": MASK}] == [v.value for v in case.violations]
    expected_patch = {"guest.name": MASK, "booking.party_size": 4}
    assert case.decision is not None and expected_patch == case.decision.patch
    assert [expected_patch] * 2 == [case.refused[0].request.patch, shown.unmatched_refusals[0].request.patch]
    assert [{"booking_ref": "B-1", "booking_party_size": 4, "guest_name": MASK}] == [d.fields for d in shown.deliveries]
    assert ("Ada Lovelace", "B-1") == (_status().payload["guest"]["name"], shown.deliveries[0].record_key)


def test_a_marked_entity_masks_everything_inside_it_keeping_its_shape() -> None:
    """Marking 'guest' masks each value under it, nested ones too, and keeps every key."""
    personal = PersonalData([ready_contract(personal=("guest",))])

    shown = _shown(_status(), None, personal)

    assert {"name": MASK, "phone": None, "address": {"street": MASK, "city": MASK}} == shown.payload["guest"]
    assert PAYLOAD["booking"] == shown.payload["booking"]


def test_only_an_operator_of_a_group_that_owns_the_case_sees_personal_values() -> None:
    """A host (the case's group now) sees the run whole; a manager, a viewer or administrator of that group, and no
    one at all, see it masked."""
    personal = PersonalData([ready_contract(personal=("guest.name",))])
    status = _status()

    seen = {
        label: _shown(status, caller, personal).payload["guest"]["name"]
        for label, caller in {
            "host": _someone(Role.OPERATOR, "managers", "hosts"),
            "manager": _someone(Role.OPERATOR, "managers"),
            "viewer of hosts": _someone(Role.VIEWER, "hosts"),
            "administrator of hosts": _someone(Role.ADMINISTRATOR, "hosts"),
            "nobody": None,
        }.items()
    }

    assert {
        "host": "Ada Lovelace",
        "manager": MASK,
        "viewer of hosts": MASK,
        "administrator of hosts": MASK,
        "nobody": MASK,
    } == seen
    assert status == _shown(status, _someone(Role.OPERATOR, "hosts"), personal)


def test_a_run_without_a_case_shows_to_its_contracts_exception_chain() -> None:
    """With no case to own it, a run's data goes to the groups that would decide one: owner and escalation."""
    personal = PersonalData([ready_contract(personal=("guest.name",))])  # hosts, then managers
    status = _status(with_case=False)

    seen = [
        _shown(status, _someone(Role.OPERATOR, group), personal).payload["guest"]["name"]
        for group in ("hosts", "managers", "kitchen")
    ]

    assert ["Ada Lovelace", "Ada Lovelace", MASK] == seen


def test_a_handoff_whose_contract_is_unknown_is_masked_whole() -> None:
    """Without the contract (the CLI without an app, a handoff the app dropped), every value counts as personal;
    its owners still see it whole."""
    shown = _shown(_status(), _someone(Role.VIEWER), PersonalData(None))
    dropped = _shown(_status(), None, PersonalData([ready_contract(name="another-handoff")]))

    assert (
        {"id": MASK, "party_size": MASK, "starts_at": MASK},
        [MASK, MASK, None, {"booking.party_size": MASK, "guest.name": MASK}],
        {"booking_ref": MASK, "booking_party_size": MASK, "guest_name": MASK},
    ) == (shown.payload["booking"], [v.value for v in shown.cases[0].violations], shown.deliveries[0].fields)
    assert shown.payload == dropped.payload
    assert _status() == _shown(_status(), _someone(Role.OPERATOR, "hosts"), PersonalData(None))


def test_a_purged_run_reads_without_its_payloads_whoever_asks() -> None:
    """A run the ledger purged shows no payload, values or patch values, even to its owners, whatever Temporal
    still holds."""
    shown = _shown(_status(), _someone(Role.OPERATOR, "hosts"), PersonalData(None), purged_at=T0)

    case = shown.cases[0]
    assert ({}, {}, [None] * 4) == (shown.payload, case.payload, [v.value for v in case.violations])
    assert case.decision is not None and {"guest.name": None, "booking.party_size": None} == case.decision.patch
    assert [{"booking_ref": None, "booking_party_size": None, "guest_name": None}] == [
        d.fields for d in shown.deliveries
    ]
    assert {"guest.name": None, "booking.party_size": None} == shown.unmatched_refusals[0].request.patch


# -- over HTTP --------------------------------------------------------------------------------------------------------


async def test_a_case_reads_whole_for_its_group_and_masked_for_every_other_reader(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """A deal whose billing e-mail is malformed: sales-ops (the owner) reads it, the case's violation and, once
    corrected, the run's patch and delivery; another group's operator, a viewer and an administrator read `•••`."""
    body = payloads.deal(account__billing_email="compta-at-lumiere")
    sent = (await api.post("/events/deal.won", json=body)).json()
    case = await open_case_in_ledger(handoffs, sent["workflow_id"])

    cases = {name: await _read(api, f"/cases/{case.id}", tokens[name]) for name in ("sam", "hana", "vera", "ada")}

    def billing(answer: dict[str, Any]) -> tuple[Any, ...]:
        detail = CaseDetail.model_validate(answer)
        email = detail.payload["account"]["billing_email"]
        broke = [v.value for v in detail.violations if v.field == "account.billing_email"]
        return email, broke, detail.payload["account"]["legal_name"], detail.payload["deal"]["id"]

    named = (body["account"]["legal_name"], body["deal"]["id"])
    assert {
        "sam": ("compta-at-lumiere", ["compta-at-lumiere"], *named),
        "hana": (MASK, [MASK], *named),
        "vera": (MASK, [MASK], *named),
        "ada": (MASK, [MASK], *named),
    } == {name: billing(answer) for name, answer in cases.items()}

    decided = await api.post(
        f"/cases/{case.id}/decision",
        json={"decision": "correct", "reason": "from the contract", "patch": {"account.billing_email": "ap@x.example"}},
        headers=bearer(tokens["sam"]),
    )
    assert 200 == decided.status_code, decided.text
    await handoffs.wait_for_stage(sent["workflow_id"], Stage.DELIVERED)
    runs = {name: await _read(api, f"/runs/{sent['workflow_id']}", tokens[name]) for name in ("sam", "vera")}

    def run_view(answer: dict[str, Any]) -> tuple[Any, ...]:
        status = RunDetail.model_validate(answer).status
        decision = status.cases[0].decision
        delivered = status.deliveries[0].fields
        return (
            status.payload["account"]["billing_email"],
            decision.patch if decision else None,
            delivered["account_billing_email"],
            delivered["deal_ref"],
        )

    assert {
        "sam": ("ap@x.example", {"account.billing_email": "ap@x.example"}, "ap@x.example", body["deal"]["id"]),
        "vera": (MASK, {"account.billing_email": MASK}, MASK, body["deal"]["id"]),
    } == {name: run_view(answer) for name, answer in runs.items()}


async def test_a_run_without_a_case_reads_whole_for_its_exception_chain_only(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """A clean reservation opens no case: front-of-house (its contract's owner group) reads the guest and what the
    POS got; a kitchen lead reads `•••` for the guest's name, phone and allergies, and the booking as it is."""
    body = payloads.reservation()
    sent = (await api.post("/events/reservation.confirmed", json=body)).json()
    await handoffs.wait_for_stage(sent["workflow_id"], Stage.DELIVERED)

    def guest(answer: dict[str, Any]) -> tuple[Any, ...]:
        status = RunDetail.model_validate(answer).status
        pos = status.deliveries[0].fields
        g = status.payload["guest"]
        return (
            g["name"],
            g["phone"],
            g["marketing_opt_in"],
            pos["guest_name"],
            pos["guest_allergies"],
            pos["booking_ref"],
        )

    host = guest(await _read(api, f"/runs/{sent['workflow_id']}", tokens["hana"]))
    chef = guest(await _read(api, f"/runs/{sent['workflow_id']}", tokens["chef"]))

    reservation_id = body["reservation"]["id"]
    assert ("Ada Lovelace", "+44 20 7946 0000", True, "Ada Lovelace", "shellfish", reservation_id) == host
    assert (MASK, MASK, True, MASK, MASK, reservation_id) == chef


async def test_a_purged_run_and_its_case_say_when_and_show_no_payload_even_live(
    api: httpx.AsyncClient, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """After purge, the run (still live in Temporal) and its case answer with `Handoff-Purged-At` and no payloads,
    even to the group that owns the case; a run that was not purged has no such header."""
    sent = (
        await api.post("/events/reservation.confirmed", json=payloads.reservation(reservation__party_size=14))
    ).json()
    case = await open_case_in_ledger(handoffs, sent["workflow_id"])
    decided = await api.post(
        f"/cases/{case.id}/decision", json={"decision": "reject", "reason": "no table"}, headers=bearer(tokens["hana"])
    )
    assert 200 == decided.status_code, decided.text
    await ledger_reaches(handoffs, sent["workflow_id"], Stage.REJECTED)
    before = await api.get(f"/runs/{sent['workflow_id']}", headers=bearer(tokens["hana"]))

    purged = await asyncio.to_thread(purge_runs, handoffs.ledger, before=datetime.now(UTC) + timedelta(minutes=1))
    run = await api.get(f"/runs/{sent['workflow_id']}", headers=bearer(tokens["hana"]))
    case_read = await api.get(f"/cases/{case.id}", headers=bearer(tokens["hana"]))

    assert 1 == purged
    assert (None, "Ada Lovelace") == (
        before.headers.get("Handoff-Purged-At"),
        RunDetail.model_validate(before.json()).status.payload["guest"]["name"],
    )
    detail = RunDetail.model_validate(run.json())
    purged_at = datetime.fromisoformat(run.headers["Handoff-Purged-At"])
    assert ("temporal", {}, [{}], [[None, None]]) == (
        detail.source,
        detail.status.payload,
        [c.payload for c in detail.status.cases],
        [[v.value for v in c.violations] for c in detail.status.cases],
    )
    assert abs(datetime.now(UTC) - purged_at) < timedelta(minutes=1)
    assert (purged_at, {}) == (
        datetime.fromisoformat(case_read.headers["Handoff-Purged-At"]),
        CaseDetail.model_validate(case_read.json()).payload,
    )


async def _read(api: httpx.AsyncClient, path: str, token: str) -> Any:
    response = await api.get(path, headers=bearer(token))
    assert 200 == response.status_code, response.text
    return response.json()
