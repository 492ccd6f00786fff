"""The inbox's pages over plain HTTP: "My cases" with its order and filters, a case as each reader may see it, the
decision form's answers (a correction checked before it is sent, refusals in the run's words), and a run's page."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session

from handoff.activities.ledger.tables import DecisionRow
from handoff.schemas.cases import ExceptionCase
from handoff.schemas.runs import Stage
from handoff.workers.inbox.session import CSRF_FIELD
from handoff.workers.masking import MASK
from handoff.workers.testkit import HandoffKit
from tests.api.checks import ledger_reaches, open_case_in_ledger, run_state
from tests.inbox.visits import csrf_of, visiting_as
from tests.runtime import payloads

PARTY_OF_14 = "Parties over 12 are events, booked by a manager."


def listed(page: str) -> list[str]:
    """The case ids of a case list, top to bottom."""
    return re.findall(r'data-case="([^"]+)"', page)


async def test_my_cases_are_my_groups_open_cases_most_urgent_first_filtered_by_handoff_and_rule(
    inbox_url: str, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """The host sees the two reservation cases (the older, whose SLA ends first, on top) and not sales-ops' deal
    case; filters narrow the list by rule and by handoff. A viewer sees every open case."""
    first = await handoffs.send("reservation.confirmed", payloads.reservation(reservation__party_size=14))
    first_case = await open_case_in_ledger(handoffs, first.workflow_id)
    second = await handoffs.send("reservation.confirmed", payloads.reservation(reservation__channel="fax"))
    second_case = await open_case_in_ledger(handoffs, second.workflow_id)
    deal = await handoffs.send("deal.won", payloads.deal(deal__currency="CHF"))
    deal_case = await open_case_in_ledger(handoffs, deal.workflow_id)

    async with visiting_as(inbox_url, tokens["hana"]) as hana, visiting_as(inbox_url, tokens["vera"]) as vera:
        mine = await hana.http.get("/inbox")
        by_rule = await hana.http.get(
            "/inbox", params={"rule": "reservation.channel in {web, phone, walk-in, partner}"}
        )
        by_handoff = await hana.http.get("/inbox", params={"handoff": "lead-to-invoice"})
        everyone = await vera.http.get("/inbox")

    assert [first_case.id, second_case.id] == listed(mine.text)
    assert "My cases" in mine.text and "left" in mine.text  # the SLA as time left
    assert [second_case.id] == listed(by_rule.text)
    assert ([], True) == (listed(by_handoff.text), "No open cases match these filters" in by_handoff.text)
    assert {first_case.id, second_case.id, deal_case.id} == set(listed(everyone.text))
    assert "Open cases" in everyone.text


async def test_the_owner_sees_each_broken_rule_beside_its_field_and_the_decision_form(
    inbox_url: str, tokens: dict[str, str], reservation_case: ExceptionCase
) -> None:
    """The case page puts the rule's reason on the row of the field it is about, and gives the owner group's
    operator the payload as a form, with the personal values in it."""
    async with visiting_as(inbox_url, tokens["hana"]) as hana:
        page = (await hana.http.get(f"/inbox/cases/{reservation_case.id}")).text

    row = re.search(r'<tr class="broken" data-field="reservation.party_size">(.*?)</tr>', page, re.S)
    assert row is not None
    assert PARTY_OF_14 in row.group(1) and 'name="set:reservation.party_size" value="14"' in row.group(1)
    assert ('id="decision-form"' in page, "Ada Lovelace" in page, MASK in page) == (True, True, False)
    assert "opened" in page and "for front-of-house" in page  # the history's first line


@pytest.mark.parametrize("reader", ["chef", "vera"])
async def test_another_groups_operator_or_a_viewer_reads_the_case_masked_without_a_form(
    inbox_url: str, handoffs: HandoffKit, tokens: dict[str, str], reservation_case: ExceptionCase, reader: str
) -> None:
    """Outside the owner group the case is read-only and its personal fields masked; a decision posted anyway (with
    a good CSRF token) is refused: the viewer's by role here, the chef's by the run, as the API's would be."""
    async with visiting_as(inbox_url, tokens[reader]) as visit:
        page = await visit.http.get(f"/inbox/cases/{reservation_case.id}")
        posted = await visit.post(
            f"/inbox/cases/{reservation_case.id}/decision",
            {"decision": "approve", "reason": "looks fine", CSRF_FIELD: csrf_of(page.text)},
        )
    status, *_ = await run_state(handoffs, reservation_case.workflow_id)

    assert ('id="decision-form"' in page.text, "Ada Lovelace" in page.text, MASK in page.text) == (False, False, True)
    assert PARTY_OF_14 in page.text
    assert (403, Stage.AWAITING_DECISION) == (posted.status_code, status.stage)
    expected = "This needs the operator role; you (vera) are a viewer" if reader == "vera" else "may not decide case"
    assert expected in posted.text


async def test_a_correction_that_does_not_fit_the_model_is_shown_beside_its_field_and_never_sent(
    inbox_url: str, handoffs: HandoffKit, tokens: dict[str, str], reservation_case: ExceptionCase
) -> None:
    """'four' for a number is refused next to reservation.party_size in pydantic's words, the form keeps what was
    typed, and the run hears nothing (not even a refused attempt); '4' is then sent as the number 4 and delivered."""
    path = f"/inbox/cases/{reservation_case.id}"
    before = await run_state(handoffs, reservation_case.workflow_id)
    async with visiting_as(inbox_url, tokens["hana"]) as hana:
        token = await hana.csrf(path)
        form = {CSRF_FIELD: token, "decision": "correct", "reason": "guest phoned: 4 people"}
        typo = await hana.post(f"{path}/decision", {**form, "set:reservation.party_size": "four"})
        after_typo = await run_state(handoffs, reservation_case.workflow_id)
        sent = await hana.post(f"{path}/decision", {**form, "set:reservation.party_size": "4"})
        listing = await hana.http.get(sent.headers["location"])

    row = re.search(r'data-field="reservation.party_size">(.*?)</tr>', typo.text, re.S)
    assert row is not None
    assert 422 == typo.status_code
    assert 'value="four"' in row.group(1) and "Input should be a valid integer" in row.group(1)
    assert before == after_typo
    assert (303, f"/inbox?decided={reservation_case.id}") == (sent.status_code, sent.headers["location"])
    await handoffs.wait_for_stage(reservation_case.workflow_id, Stage.DELIVERED)
    with Session(handoffs.ledger) as session:
        decision = session.get(DecisionRow, reservation_case.id)
    assert decision is not None
    assert ("correct", "hana", {"reservation.party_size": 4}) == (decision.decision, decision.operator, decision.patch)
    assert reservation_case.id not in listed(listing.text)
    assert f'Case <a href="/inbox/cases/{reservation_case.id}">{reservation_case.id}</a>:' in listing.text


async def test_a_decision_without_a_reason_or_a_correction_without_a_change_is_not_sent(
    inbox_url: str, handoffs: HandoffKit, tokens: dict[str, str], reservation_case: ExceptionCase
) -> None:
    """The form asks for what is missing, beside the reason or above the fields; the run hears nothing."""
    path = f"/inbox/cases/{reservation_case.id}"
    before = await run_state(handoffs, reservation_case.workflow_id)
    async with visiting_as(inbox_url, tokens["hana"]) as hana:
        token = await hana.csrf(path)
        no_reason = await hana.post(f"{path}/decision", {CSRF_FIELD: token, "decision": "reject", "reason": "  "})
        no_change = await hana.post(f"{path}/decision", {CSRF_FIELD: token, "decision": "correct", "reason": "x"})
        no_decision = await hana.post(f"{path}/decision", {CSRF_FIELD: token, "decision": "maybe", "reason": "x"})

    assert [422, 422, 422] == [answer.status_code for answer in (no_reason, no_change, no_decision)]
    assert "Say why: the reason is kept in the audit trail." in no_reason.text
    assert "Change at least one field to correct the case." in no_change.text
    assert "Choose a decision: approve, reject, correct, retry." in no_decision.text
    assert before == await run_state(handoffs, reservation_case.workflow_id)


async def test_a_refused_decision_is_shown_in_the_runs_words_with_the_apis_status(
    inbox_url: str, handoffs: HandoffKit, tokens: dict[str, str], reservation_case: ExceptionCase
) -> None:
    """Deciding a case twice (a second tab) is a 409 page quoting the refusal; the decided case shows no form."""
    path = f"/inbox/cases/{reservation_case.id}"
    async with visiting_as(inbox_url, tokens["hana"]) as hana:
        token = await hana.csrf(path)
        first = await hana.post(f"{path}/decision", {CSRF_FIELD: token, "decision": "reject", "reason": "duplicate"})
        await ledger_reaches(handoffs, reservation_case.workflow_id, Stage.REJECTED)
        again = await hana.post(f"{path}/decision", {CSRF_FIELD: token, "decision": "approve", "reason": "oops"})

    assert (303, 409) == (first.status_code, again.status_code)
    assert "cannot be decided any more" in again.text or "was already decided" in again.text
    assert 'id="decision-form"' not in again.text and "This case has been decided." in again.text
    assert "decided: reject" in again.text and "duplicate" in again.text  # the history's last line


async def test_an_unknown_case_or_run_is_a_404_page(inbox_url: str, tokens: dict[str, str]) -> None:
    """Unknown ids answer a page that says what was not found, in the API's words."""
    async with visiting_as(inbox_url, tokens["hana"]) as hana:
        case = await hana.http.get("/inbox/cases/C-nope")
        run = await hana.http.get("/inbox/runs/reservation-to-pos/R-nope")
        decision = await hana.post(
            "/inbox/cases/C-nope/decision", {CSRF_FIELD: csrf_of(case.text), "decision": "reject", "reason": "x"}
        )

    assert (404, 404, 404) == (case.status_code, run.status_code, decision.status_code)
    assert "No case &#39;C-nope&#39; in the ledger." in case.text
    assert "neither Temporal nor the ledger knows it" in run.text


async def test_the_run_page_shows_its_stages_and_deliveries(
    inbox_url: str, handoffs: HandoffKit, tokens: dict[str, str]
) -> None:
    """A delivered run shows its way with 'delivered' current, what happened when, and what the POS received; the
    guest's name in it only to a group of the contract's chain."""
    accepted = await handoffs.send("reservation.confirmed", payloads.reservation())
    await handoffs.wait_for_stage(accepted.workflow_id, Stage.DELIVERED)
    await ledger_reaches(handoffs, accepted.workflow_id, Stage.DELIVERED)
    async with visiting_as(inbox_url, tokens["hana"]) as hana, visiting_as(inbox_url, tokens["chef"]) as chef:
        page = (await hana.http.get(f"/inbox/runs/{accepted.workflow_id}")).text
        masked = (await chef.http.get(f"/inbox/runs/{accepted.workflow_id}")).text

    assert re.search(r'<li class="now" aria-current="step" data-testid="stage">delivered</li>', page)
    assert 'data-testid="delivery"' in page and "pos" in page and "booking_ref" in page
    assert "delivered to pos" in page and "received" in page
    assert ("Ada Lovelace" in page, "Ada Lovelace" in masked, MASK in masked) == (True, False, True)
