"""Four eyes in a real Chromium against the real API, worker and dev server: the same operator's second approval is
refused; another's completes it.

The app is the restaurant's, with reservation-to-pos asking for a second host's approval for parties of 13 or more
(a new version, in a lock file of the test's own, so the readiness gate lets the worker run it). The screenshot of
the case page waiting for a second approval is written with the other browser tests' (`four-eyes.png`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from sqlmodel import Session, select

from examples.restaurant import RestaurantApp, build_app, reservation_to_pos
from examples.restaurant.app import CONTRACTS, LOCK_FILE
from handoff import Min
from handoff.activities.ledger.operators import add_operator
from handoff.activities.ledger.tables import CaseEventRow, DecisionRow
from handoff.schemas.cases import ExceptionCase, RefusalKind
from handoff.schemas.contract import FourEyes
from handoff.schemas.runs import Stage
from handoff.workers.lock import read_lock, write_lock
from handoff.workers.testkit import HandoffKit
from tests.api.checks import ledger_reaches
from tests.inbox.conftest import phone_context, screenshot, sign_in

PLAIN = reservation_to_pos.CONTRACT
assert PLAIN.exceptions is not None
FOUR_EYES = PLAIN.model_copy(
    update={
        "version": PLAIN.version + 1,
        "exceptions": PLAIN.exceptions.model_copy(
            update={
                "four_eyes": FourEyes(
                    when=Min(field="reservation.party_size", value=13, reason="Parties of 13 or more: two hosts agree.")
                )
            }
        ),
    }
)
"""reservation-to-pos, next version: an approval or a correction of a party of 13 or more needs a second host."""


@pytest.fixture
def restaurant(tmp_path: Path) -> Iterator[RestaurantApp]:
    """The restaurant app with `FOUR_EYES` in place of reservation-to-pos, locked as `handoff lock` would lock it:
    the restaurant's lock plus the new version."""
    lock_file = tmp_path / "handoff.lock"
    contracts = [FOUR_EYES, *(contract for contract in CONTRACTS if contract.name != FOUR_EYES.name)]
    app = build_app(f"sqlite:///{tmp_path / 'restaurant.db'}", contracts=contracts, lock_file=lock_file)
    write_lock(lock_file, read_lock(LOCK_FILE).with_contracts(app.every_version()))
    try:
        yield app
    finally:
        app.systems.dispose()


@pytest.fixture
def ines(handoffs: HandoffKit, tokens: dict[str, str]) -> str:
    """The token of a second host, so front-of-house has two operators."""
    return add_operator(handoffs.ledger, "ines", ["front-of-house"], declared_groups=handoffs.app.catalog.group_names)


async def approve(page: Page, reason: str) -> None:
    """On the open case page: give the reason and press Approve."""
    await page.get_by_label("Reason").fill(reason)
    await page.get_by_role("button", name="Approve").click()


async def test_the_same_hosts_second_approval_is_refused_and_another_hosts_completes_it(
    browser: Browser,
    inbox_url: str,
    handoffs: HandoffKit,
    restaurant: RestaurantApp,
    tokens: dict[str, str],
    ines: str,
    reservation_case: ExceptionCase,
) -> None:
    """Hana approves the party of 14: her inbox and the case page say it waits for a second host. Her approval
    again is refused in the workflow's words and the case stays open; Ines, on her own phone, approves: the case
    leaves her list and the run delivers the party to the POS, with Ines's decision and Hana's first approval in
    the ledger."""
    case_path = f"{inbox_url}/inbox/cases/{reservation_case.id}"
    async with phone_context(browser) as hana_phone, phone_context(browser) as ines_phone:
        hana = await hana_phone.new_page()
        await sign_in(hana, inbox_url, tokens["hana"])
        await hana.locator(f'li[data-case="{reservation_case.id}"] a').click()
        await approve(hana, "a private room is free")

        waiting = hana.get_by_test_id("first-approval")
        await expect(waiting).to_contain_text(
            f"{reservation_case.id}: the first approval, by hana, is kept; it takes effect when a second operator of "
            "front-of-house agrees."
        )
        await expect(hana.locator(f'li[data-case="{reservation_case.id}"]')).to_have_count(1)

        await hana.goto(case_path)
        await expect(hana.get_by_test_id("status")).to_have_text("open")
        await expect(waiting).to_contain_text("Waiting for a second approval: you decided first")
        await expect(waiting).to_contain_text("another operator of front-of-house sends the same decision")
        await expect(hana.get_by_test_id("history")).to_contain_text(
            "first approval: waits for a second operator of the group · hana"
        )
        await hana.screenshot(path=screenshot("four-eyes.png"), full_page=True)

        await approve(hana, "approving again")
        await expect(hana.get_by_role("alert")).to_contain_text(
            f"Case {reservation_case.id} needs four eyes: 'hana' decided approve first, so another operator of "
            "'front-of-house' must agree."
        )
        await expect(hana.get_by_test_id("status")).to_have_text("open")
        await expect(hana.locator("#decision-form")).to_have_count(1)
        refused = await handoffs.status(reservation_case.workflow_id)

        colleague = await ines_phone.new_page()
        await sign_in(colleague, inbox_url, ines)
        await colleague.locator(f'li[data-case="{reservation_case.id}"] a').click()
        await expect(colleague.get_by_test_id("first-approval")).to_contain_text(
            "Waiting for a second approval: hana decided first (approve: a private room is free)."
        )
        await approve(colleague, "checked: the private room holds 14")
        await expect(colleague.get_by_test_id("decided")).to_contain_text(f"{reservation_case.id}: approve by ines")
        await expect(colleague.locator(f'li[data-case="{reservation_case.id}"]')).to_have_count(0)

    status = await handoffs.wait_for_stage(reservation_case.workflow_id, Stage.DELIVERED)
    await ledger_reaches(handoffs, reservation_case.workflow_id, Stage.DELIVERED)
    with Session(handoffs.ledger) as session:
        events = session.exec(select(CaseEventRow).where(CaseEventRow.case_id == reservation_case.id)).all()
        decisions = session.exec(select(DecisionRow).where(DecisionRow.case_id == reservation_case.id)).all()
    pos = restaurant.systems.rows("pos")

    assert (Stage.AWAITING_DECISION, [(RefusalKind.SAME_APPROVER, "hana")]) == (
        refused.stage,
        [(attempt.kind, attempt.request.operator) for attempt in refused.cases[0].refused],
    )
    assert (FOUR_EYES.version, FOUR_EYES.content_hash()) == (status.contract_version, status.contract_hash)
    assert [("first-approval", "hana")] == [(e.kind, e.operator) for e in events if e.kind == "first-approval"]
    assert [("approve", "ines")] == [(row.decision, row.operator) for row in decisions]
    assert [(reservation_case.workflow_id, 14)] == [(row["record_key"], row["reservation_party_size"]) for row in pos]
