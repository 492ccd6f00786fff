"""Bad data stops and waits for its owner: one case with every violation, and each decision taken end to end."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete
from sqlmodel import Session, select

from examples.restaurant import RestaurantApp
from examples.restaurant.systems import create_systems_engine
from examples.restaurant.systems.tables import INVOICING_BLOCKED_ACCOUNTS
from handoff.activities.ledger.tables import CaseRow, DecisionRow, RunRow, ViolationRow
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import Stage
from handoff.workers.testkit import HandoffKit
from tests.runtime import payloads

FRONT_OF_HOUSE = ("front-of-house",)
SALES_OPS = ("sales-ops",)


def bad_reservation() -> dict[str, object]:
    """A reservation that breaks five rules at once, one of them a look-up."""
    body = payloads.reservation(reservation__party_size=14, reservation__table_number="T99", reservation__channel="fax")
    body["guest"]["name"] = None
    return body


async def test_bad_payload_opens_one_case_listing_every_violation(kit: HandoffKit) -> None:
    """All violations are collected in one pass (not first-fail), each naming rule, field, value and reason."""
    accepted = await kit.send("reservation.confirmed", bad_reservation())
    case = await kit.open_case(accepted.workflow_id)

    assert [
        ("reservation.party_size <= 12", "reservation.party_size", 14),
        ("guest.name is required", "guest.name", None),
        ("reservation.channel in {web, phone, walk-in, partner}", "reservation.channel", "fax"),
        ("if reservation.party_size >= 8 then reservation.deposit_cents >= 1", "reservation.deposit_cents", 0),
        ("pos.table_exists(reservation.table_number)", "reservation.table_number", "T99"),
    ] == [(v.rule, v.field, v.value) for v in case.violations]
    assert all(v.reason for v in case.violations)
    assert ("front-of-house", ["approve", "correct", "reject", "retry"]) == (case.owner_group, case.allowed)
    with Session(kit.ledger) as session:
        row = session.get(CaseRow, case.id)
        violations = session.exec(select(ViolationRow).where(ViolationRow.case_id == case.id)).all()
        run = session.get(RunRow, accepted.workflow_id)
    assert row is not None and run is not None
    assert ("open", Stage.AWAITING_DECISION.value, 5) == (row.status, run.stage, len(violations))


async def test_approve_delivers_as_is_and_records_an_override(kit: HandoffKit, restaurant: RestaurantApp) -> None:
    """Approve delivers the payload unchanged; the run is marked as an override and the decision is audited."""
    accepted = await kit.send("reservation.confirmed", bad_reservation())
    case = await kit.open_case(accepted.workflow_id)

    decided = await kit.decide(
        accepted.workflow_id, case.id, DecisionKind.APPROVE, operator="hana", groups=FRONT_OF_HOUSE, reason="VIP"
    )
    result = await kit.result(accepted.workflow_id)

    assert ("delivering", Stage.DELIVERED) == (decided.next_stage, result.stage)
    pos_row = restaurant.systems.adapter("pos").read(accepted.workflow_id)
    assert pos_row is not None and 14 == pos_row["reservation_party_size"]
    with Session(kit.ledger) as session:
        run = session.get(RunRow, accepted.workflow_id)
        decision = session.get(DecisionRow, case.id)
        case_row = session.get(CaseRow, case.id)
    assert run is not None and decision is not None and case_row is not None
    assert (True, Stage.DELIVERED.value) == (run.override, run.stage)
    assert ("approve", "hana", "front-of-house", "VIP", False) == (
        decision.decision,
        decision.operator,
        decision.group,
        decision.reason,
        decision.by_timeout,
    )
    assert ("decided", "approve") == (case_row.status, case_row.decision)


async def test_reject_ends_the_run_and_delivers_nothing(kit: HandoffKit, restaurant: RestaurantApp) -> None:
    """Reject ends the run as rejected; no target system receives anything."""
    accepted = await kit.send("reservation.confirmed", bad_reservation())
    case = await kit.open_case(accepted.workflow_id)

    await kit.decide(accepted.workflow_id, case.id, DecisionKind.REJECT, operator="hana", groups=FRONT_OF_HOUSE)
    result = await kit.result(accepted.workflow_id)

    assert Stage.REJECTED == result.stage
    assert restaurant.systems.adapter("pos").read(accepted.workflow_id) is None
    with Session(kit.ledger) as session:
        run = session.get(RunRow, accepted.workflow_id)
        decision = session.get(DecisionRow, case.id)
    assert run is not None and decision is not None
    assert (Stage.REJECTED.value, "reject") == (run.stage, decision.decision)
    assert run.finished_at is not None


async def test_correct_patches_fields_validates_again_and_delivers(kit: HandoffKit, restaurant: RestaurantApp) -> None:
    """Correct applies the patch, validates again, and delivers the corrected values."""
    accepted = await kit.send("reservation.confirmed", bad_reservation())
    case = await kit.open_case(accepted.workflow_id)
    patch = {
        "reservation.party_size": 6,
        "guest.name": "Ada Lovelace",
        "reservation.channel": "phone",
        "reservation.table_number": "T12",
    }

    decided = await kit.decide(
        accepted.workflow_id, case.id, DecisionKind.CORRECT, operator="hana", groups=FRONT_OF_HOUSE, patch=patch
    )
    result = await kit.result(accepted.workflow_id)

    assert ("validating", Stage.DELIVERED) == (decided.next_stage, result.stage)
    pos_row = restaurant.systems.adapter("pos").read(accepted.workflow_id)
    assert pos_row is not None
    assert (6, "Ada Lovelace", "T12") == (
        pos_row["reservation_party_size"],
        pos_row["guest_name"],
        pos_row["reservation_table_number"],
    )
    with Session(kit.ledger) as session:
        decision = session.get(DecisionRow, case.id)
        run = session.get(RunRow, accepted.workflow_id)
    assert decision is not None and run is not None
    assert (patch, False) == (decision.patch, run.override)


async def test_a_correction_that_leaves_a_violation_opens_a_new_case(kit: HandoffKit) -> None:
    """A partial correction is validated again and the remaining violations become a second case."""
    accepted = await kit.send("reservation.confirmed", bad_reservation())
    first = await kit.open_case(accepted.workflow_id)

    await kit.decide(
        accepted.workflow_id,
        first.id,
        DecisionKind.CORRECT,
        operator="hana",
        groups=FRONT_OF_HOUSE,
        patch={"reservation.party_size": 6, "guest.name": "Ada", "reservation.channel": "web"},
    )
    second = await kit.open_case(accepted.workflow_id)

    assert first.id != second.id
    assert ["pos.table_exists(reservation.table_number)"] == [v.rule for v in second.violations]
    assert 6 == second.payload["reservation"]["party_size"]


async def test_retry_validates_again_after_the_upstream_system_was_fixed(
    kit: HandoffKit, restaurant: RestaurantApp, tmp_path: Path
) -> None:
    """Retry runs the look-ups again unchanged: once invoicing unblocks the account, the deal is invoiced."""
    body = payloads.deal(account__id="ACC-BLOCKED-1")
    accepted = await kit.send("deal.won", body)
    case = await kit.open_case(accepted.workflow_id)
    assert ["invoicing.account_not_blocked(account.id)"] == [v.rule for v in case.violations]

    # The restaurant fixture's systems database (tests/conftest.py); invoicing's reference data has no adapter.
    systems = create_systems_engine(f"sqlite:///{tmp_path / 'restaurant.db'}")
    with systems.begin() as connection:
        unblocked = connection.execute(
            delete(INVOICING_BLOCKED_ACCOUNTS).where(INVOICING_BLOCKED_ACCOUNTS.c.account_id == "ACC-BLOCKED-1")
        ).rowcount
    systems.dispose()
    assert 1 == unblocked
    decided = await kit.decide(
        accepted.workflow_id, case.id, DecisionKind.RETRY, operator="sam", groups=SALES_OPS, reason="account paid"
    )
    result = await kit.result(accepted.workflow_id)

    assert ("validating", Stage.DELIVERED, 1) == (decided.next_stage, result.stage, len(result.cases))
    assert restaurant.systems.adapter("invoicing").read(accepted.workflow_id) is not None
    with Session(kit.ledger) as session:
        decision = session.get(DecisionRow, case.id)
    assert decision is not None and "retry" == decision.decision


async def test_retry_with_the_upstream_still_broken_opens_a_new_case(kit: HandoffKit) -> None:
    """Retry while the account is still blocked finds the same violation again, in a new case."""
    accepted = await kit.send("deal.won", payloads.deal(account__id="ACC-BLOCKED-2"))
    first = await kit.open_case(accepted.workflow_id)

    await kit.decide(accepted.workflow_id, first.id, DecisionKind.RETRY, operator="sam", groups=SALES_OPS)
    second = await kit.open_case(accepted.workflow_id)

    assert first.id != second.id
    assert [v.rule for v in first.violations] == [v.rule for v in second.violations]
