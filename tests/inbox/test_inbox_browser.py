"""The inbox in a real Chromium (Debian's, driven by Playwright) against the real API, worker and dev server: an
operator signs in, finds the case, corrects a field, decides, and the run is delivered; a member of another group
gets no decision form; a forged post changes nothing; a wrong token is told so.

Screenshots of the case list and a case page, at a phone's size, are written to `HANDOFF_TEST_ARTIFACTS` (default
`.handoff/test-artifacts/`, which git ignores) under `inbox/`.
"""

from __future__ import annotations

from playwright.async_api import BrowserContext, expect
from sqlmodel import Session

from handoff.activities.ledger.tables import DecisionRow
from handoff.schemas.cases import ExceptionCase
from handoff.schemas.runs import Stage
from handoff.workers.masking import MASK
from handoff.workers.testkit import HandoffKit
from tests.api.checks import ledger_reaches, run_state
from tests.inbox.conftest import screenshot, sign_in

PARTY_OF_14 = "Parties over 12 are events, booked by a manager."


async def test_an_operator_corrects_a_case_and_the_run_is_delivered(
    phone: BrowserContext,
    inbox_url: str,
    handoffs: HandoffKit,
    tokens: dict[str, str],
    reservation_case: ExceptionCase,
) -> None:
    """Sign in; the case is in "My cases"; its page shows why beside the field; a typo is caught beside the field;
    the corrected party size is sent; the case leaves the list and the run is delivered with it."""
    page = await phone.new_page()
    await sign_in(page, inbox_url, tokens["hana"])

    case_link = page.locator(f'li[data-case="{reservation_case.id}"] a')
    await expect(page.get_by_role("heading", name="My cases")).to_be_visible()
    await expect(case_link).to_contain_text("reservation.party_size <= 12")
    await page.screenshot(path=screenshot("inbox.png"), full_page=True)

    await case_link.click()
    party = page.locator('tr[data-field="reservation.party_size"]')
    await expect(party).to_contain_text(PARTY_OF_14)
    await expect(party.locator("input")).to_have_value("14")
    await page.screenshot(path=screenshot("case.png"), full_page=True)

    await party.locator("input").fill("four")
    await page.get_by_label("Reason").fill("guest phoned: 4 people")
    await page.get_by_role("button", name="Correct and send").click()
    await expect(party.get_by_test_id("problem")).to_contain_text("Input should be a valid integer")
    assert Stage.AWAITING_DECISION == (await handoffs.status(reservation_case.workflow_id)).stage

    await party.locator("input").fill("4")
    await page.get_by_role("button", name="Correct and send").click()
    await expect(page.get_by_test_id("decided")).to_contain_text(f"{reservation_case.id}: correct by hana")
    await expect(page.locator(f'li[data-case="{reservation_case.id}"]')).to_have_count(0)

    status = await handoffs.wait_for_stage(reservation_case.workflow_id, Stage.DELIVERED)
    await ledger_reaches(handoffs, reservation_case.workflow_id, Stage.DELIVERED)
    with Session(handoffs.ledger) as session:
        decision = session.get(DecisionRow, reservation_case.id)
    assert decision is not None
    assert (4, {"reservation.party_size": 4}) == (status.payload["reservation"]["party_size"], decision.patch)

    await page.goto(f"{inbox_url}/inbox/runs/{reservation_case.workflow_id}")
    await expect(page.get_by_test_id("stage")).to_have_text("delivered")
    await expect(page.get_by_test_id("delivery")).to_contain_text("pos")
    await page.screenshot(path=screenshot("run.png"), full_page=True)


async def test_a_member_of_another_group_sees_no_decision_form(
    phone: BrowserContext, inbox_url: str, tokens: dict[str, str], reservation_case: ExceptionCase
) -> None:
    """The chef's cases do not include the host's; opened by its address, the case is read-only and masked."""
    page = await phone.new_page()
    await sign_in(page, inbox_url, tokens["chef"])
    await expect(page.get_by_test_id("no-cases")).to_be_visible()

    await page.goto(f"{inbox_url}/inbox/cases/{reservation_case.id}")
    await expect(page.get_by_test_id("read-only")).to_contain_text("owned by front-of-house")
    await expect(page.locator("#decision-form")).to_have_count(0)
    await expect(page.locator('tr[data-field="guest.name"]')).to_contain_text(MASK)
    await expect(page.locator('tr[data-field="reservation.party_size"]')).to_contain_text(PARTY_OF_14)


async def test_a_forged_post_is_refused_and_changes_nothing(
    phone: BrowserContext,
    inbox_url: str,
    handoffs: HandoffKit,
    tokens: dict[str, str],
    reservation_case: ExceptionCase,
) -> None:
    """With the host signed in, a post that carries her cookie but no CSRF token is 403; a form another page
    submits to the inbox arrives without her session cookie (SameSite=Lax) and is sent to sign in. The run and the
    ledger are as they were, and the case is still hers to decide."""
    page = await phone.new_page()
    await sign_in(page, inbox_url, tokens["hana"])
    await expect(page.get_by_role("heading", name="My cases")).to_be_visible()
    decision_url = f"{inbox_url}/inbox/cases/{reservation_case.id}/decision"
    before = await run_state(handoffs, reservation_case.workflow_id)

    forged = await phone.request.post(decision_url, form={"decision": "reject", "reason": "forged"}, max_redirects=0)

    other_site = await phone.new_page()
    await other_site.set_content(
        f'<form method="post" action="{decision_url}"><input name="decision" value="reject">'
        '<input name="reason" value="forged"><button>Win a prize</button></form>'
    )
    async with other_site.expect_response(lambda r: r.url == decision_url) as posted:
        await other_site.get_by_role("button", name="Win a prize").click()
    cross_site = await posted.value
    sent_headers = await cross_site.request.all_headers()

    assert 403 == forged.status
    assert "this form did not come from your inbox" in await forged.text()
    assert (303, None) == (cross_site.status, sent_headers.get("cookie"))
    assert cross_site.headers["location"].startswith("/inbox/sign-in")
    await expect(other_site.locator(f'li[data-case="{reservation_case.id}"]')).to_have_count(1)
    assert before == await run_state(handoffs, reservation_case.workflow_id)


async def test_a_wrong_token_at_sign_in_shows_the_error(
    phone: BrowserContext, inbox_url: str, tokens: dict[str, str]
) -> None:
    """A token that matches no one is refused on the sign-in page, in the API's words; the inbox stays shut."""
    page = await phone.new_page()
    await sign_in(page, inbox_url, "not-" + tokens["hana"])

    await expect(page.get_by_role("alert")).to_contain_text("The API token is not valid: it matches no one.")
    await page.goto(f"{inbox_url}/inbox")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
