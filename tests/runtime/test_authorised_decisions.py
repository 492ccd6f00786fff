"""Decisions are authorised where they are applied: a run takes a decision only when Handoff's edge attested it, for
an operator the ledger has, and judges it on the ledger's groups. Anything else, even sent straight to Temporal, is
refused, audited (the case's history and the ledger), and the case stays open.

The kit's worker holds the kit's decision key; `kit.client` is a plain Temporal client, as anyone with access to the
namespace has one.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, TypeVar

import pytest
from pydantic import ValidationError
from sqlmodel import Session, select
from temporalio.client import WorkflowHistory, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from examples.restaurant import RestaurantApp
from handoff.activities.authorisation import attest, attestation_problem
from handoff.activities.ledger.operators import add_operator
from handoff.activities.ledger.tables import DecisionRow, OperatorRow, RefusedDecisionRow
from handoff.schemas.cases import CaseStatus, DecisionRequest, ExceptionCase, RefusalKind
from handoff.schemas.contract import DecisionKind
from handoff.schemas.operators import Role
from handoff.schemas.runs import Stage
from handoff.workers.decisions import DecisionRefused, MissingDecisionKey, decide, decision_key
from handoff.workers.settings import Settings
from handoff.workers.testkit import HandoffKit
from handoff.workflows.handoff import HandoffWorkflow
from handoff.workflows.steps import DECISIONS_RECORDED_WHEN_VERIFIED
from tests.runtime import payloads
from tests.runtime.test_refusals import audited

T = TypeVar("T")

ANOTHER_KEY = b"the-decision-key-of-another-deployment"


async def open_deal_case(kit: HandoffKit) -> tuple[str, ExceptionCase]:
    """A lead-to-invoice run held for sales-ops (a CHF deal; 8 hours of SLA, 16 s in tests), and its open case."""
    accepted = await kit.send("deal.won", payloads.deal(deal__currency="CHF"))
    return accepted.workflow_id, await kit.open_case(accepted.workflow_id)


async def eventually(read: Callable[[], T], *, what: str, timeout: float = 15) -> T:
    """`read()` once it is truthy (the ledger is written just after the run handled a signal)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await asyncio.to_thread(read)):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout}s")
        await asyncio.sleep(0.05)
    return value


async def update_refused(kit: HandoffKit, workflow_id: str, request: DecisionRequest) -> ApplicationError:
    """Send `request` as the `decide` Update with a plain client; the Update must fail, and this is its cause."""
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await kit.client.get_workflow_handle(workflow_id).execute_update(HandoffWorkflow.decide, request)
    assert isinstance(failed.value.cause, ApplicationError)
    return failed.value.cause


async def sent_straight(
    kit: HandoffKit, workflow_id: str, request: DecisionRequest, via: Literal["update", "signal"]
) -> tuple[str | None, str]:
    """Send `request` with a plain client by Update or signal; the refusal's kind and message (the Update's failure,
    or the signal's refusal in the case's history, once the ledger holds it too)."""
    if via == "update":
        cause = await update_refused(kit, workflow_id, request)
        return cause.type, cause.message
    await kit.client.get_workflow_handle(workflow_id).signal(HandoffWorkflow.decide_by_signal, request)
    status = await kit.wait_for(workflow_id, lambda s: bool(s.cases[0].refused), what="the refusal")
    await eventually(lambda: audited(kit, workflow_id), what="the refusal's ledger record")
    [refused] = status.cases[0].refused
    return (refused.kind.value if refused.kind else None), refused.refusal


async def assert_still_open(kit: HandoffKit, workflow_id: str) -> None:
    """The run still waits for a decision on its case, and the ledger holds no decision for it."""
    status = await kit.status(workflow_id)
    with Session(kit.ledger) as session:
        decisions = session.exec(select(DecisionRow).where(DecisionRow.workflow_id == workflow_id)).all()
    assert (Stage.AWAITING_DECISION, CaseStatus.OPEN, None, []) == (
        status.stage,
        status.cases[0].status,
        status.cases[0].decision,
        decisions,
    )


@pytest.mark.parametrize("via", ["update", "signal"])
async def test_a_made_up_operator_sent_straight_to_temporal_is_refused_and_audited(
    kit: HandoffKit, via: Literal["update", "signal"]
) -> None:
    """'mallory', claiming the owner group, sent with a plain Temporal client: refused for want of an attestation;
    the ledger records who tried what, why it was refused and when; the case stays open."""
    workflow_id, case = await open_deal_case(kit)
    forged = DecisionRequest(
        case_id=case.id,
        decision=DecisionKind.REJECT,
        operator="mallory",
        operator_groups=("sales-ops",),
        reason="trust me",
    )

    kind, refusal = await sent_straight(kit, workflow_id, forged, via)

    assert RefusalKind.UNAUTHORISED.value == kind
    assert f"The decision on case {case.id} by 'mallory' was refused: it carries no attestation" in refusal
    await assert_still_open(kit, workflow_id)
    assert [(1, "mallory", refusal)] == audited(kit, workflow_id)
    with Session(kit.ledger) as session:
        row = session.exec(select(RefusedDecisionRow).where(RefusedDecisionRow.workflow_id == workflow_id)).one()
    assert (case.id, "reject", "trust me") == (row.case_id, row.decision, row.reason)
    assert abs(datetime.now(UTC) - row.at.replace(tzinfo=UTC)) < timedelta(minutes=1)


async def test_a_real_operators_name_without_a_valid_attestation_is_refused(kit: HandoffKit) -> None:
    """sam of sales-ops is in the ledger, but a request in sam's name is refused unless the edge attested it with
    the worker's key and nothing changed since: none, another key's and an altered one are each refused and audited."""
    workflow_id, case = await open_deal_case(kit)
    kit.operator("sam", ("sales-ops",))
    request = DecisionRequest(case_id=case.id, decision=DecisionKind.REJECT, operator="sam", reason="a duplicate")
    unattested = request
    other_key = attest(request, ANOTHER_KEY)
    altered = attest(request, kit.decision_key).model_copy(update={"reason": "changed on the way"})

    refusals = [await update_refused(kit, workflow_id, sent) for sent in (unattested, other_key, altered)]

    assert [RefusalKind.UNAUTHORISED.value] * 3 == [refusal.type for refusal in refusals]
    assert "it carries no attestation" in refusals[0].message
    assert all("its attestation does not match" in refusal.message for refusal in refusals[1:])
    assert "HANDOFF_DECISION_KEY" in refusals[1].message
    await assert_still_open(kit, workflow_id)
    assert [(1, "sam"), (2, "sam"), (3, "sam")] == [(n, operator) for n, operator, _ in audited(kit, workflow_id)]


async def test_an_attested_decision_is_judged_on_the_ledgers_groups_and_the_owner_decides(
    kit: HandoffKit, restaurant: RestaurantApp
) -> None:
    """The groups a request claims count for nothing: fin (finance) claiming sales-ops is refused as not the owner;
    sam (sales-ops) claiming no group at all corrects the case, for sales-ops, and the run delivers."""
    workflow_id, case = await open_deal_case(kit)
    kit.operator("fin", ("finance",))
    kit.operator("sam", ("sales-ops",))

    with pytest.raises(DecisionRefused) as not_owner:
        await decide(
            kit.client,
            workflow_id,
            DecisionRequest(
                case_id=case.id,
                decision=DecisionKind.REJECT,
                operator="fin",
                operator_groups=("sales-ops",),
                reason="mine now",
            ),
            key=kit.decision_key,
        )
    decided = await decide(
        kit.client,
        workflow_id,
        DecisionRequest(
            case_id=case.id,
            decision=DecisionKind.CORRECT,
            operator="sam",
            reason="the customer pays in euros",
            patch={"deal.currency": "EUR"},
        ),
        key=kit.decision_key,
    )
    result = await kit.result(workflow_id)

    assert RefusalKind.NOT_OWNER == not_owner.value.refusal.kind
    assert "Operator 'fin' (finance) may not decide" in str(not_owner.value)
    assert decided.case.decision is not None
    assert ("sam", "sales-ops", Stage.DELIVERED) == (
        decided.case.decision.operator,
        decided.case.decision.group,
        result.stage,
    )
    invoice = restaurant.systems.adapter("invoicing").read(workflow_id)
    assert invoice is not None and "EUR" == invoice["deal_currency"]
    assert [(1, "fin", str(not_owner.value))] == audited(kit, workflow_id)


async def test_an_edge_holding_another_key_than_the_worker_is_refused(kit: HandoffKit) -> None:
    """An API or CLI set up with another HANDOFF_DECISION_KEY than the worker: its decisions are refused, saying so."""
    workflow_id, case = await open_deal_case(kit)
    kit.operator("sam", ("sales-ops",))

    with pytest.raises(DecisionRefused) as refused:
        await decide(
            kit.client,
            workflow_id,
            DecisionRequest(case_id=case.id, decision=DecisionKind.REJECT, operator="sam", reason="a duplicate"),
            key=ANOTHER_KEY,
        )

    assert RefusalKind.UNAUTHORISED == refused.value.refusal.kind
    assert "another HANDOFF_DECISION_KEY than this worker" in str(refused.value)
    await assert_still_open(kit, workflow_id)
    assert [(1, "sam", str(refused.value))] == audited(kit, workflow_id)


async def test_an_operator_no_longer_in_the_ledger_or_a_stale_attestation_is_refused(kit: HandoffKit) -> None:
    """An attestation vouches for a moment, not for ever: an operator removed since, and a request attested an hour
    ago (say, copied from a run's history), are refused."""
    workflow_id, case = await open_deal_case(kit)
    kit.operator("leo", ("sales-ops",))
    kit.operator("sam", ("sales-ops",))
    leaving = attest(
        DecisionRequest(case_id=case.id, decision=DecisionKind.REJECT, operator="leo", reason="a duplicate"),
        kit.decision_key,
    )
    with Session(kit.ledger) as session:
        row = session.get(OperatorRow, "leo")
        session.delete(row)
        session.commit()
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    stale = attest(
        DecisionRequest(case_id=case.id, decision=DecisionKind.REJECT, operator="sam", reason="a duplicate"),
        kit.decision_key,
        now=an_hour_ago,
    )

    gone = await update_refused(kit, workflow_id, leaving)
    late = await update_refused(kit, workflow_id, stale)

    assert "'leo' is not an operator in the ledger (any more)" in gone.message
    assert "more than 15 minutes ago. Send the decision again." in late.message
    await assert_still_open(kit, workflow_id)
    assert ["leo", "sam"] == [operator for _, operator, _ in audited(kit, workflow_id)]


async def test_a_run_with_authorised_decisions_replays(kit: HandoffKit, restaurant: RestaurantApp) -> None:
    """A forged Update, a forged signal and an attested decision replay without non-determinism: the verdicts come
    from history (no key, no ledger). A run started with `decisions-recorded-when-verified` has every patch before it, so it asks
    for no decision message's marker (runs from before `ledger-writes-ride-along` have one per message:
    tests/histories)."""
    workflow_id, case = await open_deal_case(kit)
    forged = DecisionRequest(case_id=case.id, decision=DecisionKind.REJECT, operator="mallory", reason="trust me")
    await update_refused(kit, workflow_id, forged)
    await kit.client.get_workflow_handle(workflow_id).signal(HandoffWorkflow.decide_by_signal, forged)
    await kit.wait_for(workflow_id, lambda s: 2 == len(s.cases[0].refused), what="two refusals")
    await kit.decide(workflow_id, case.id, DecisionKind.REJECT, operator="sam", groups=("sales-ops",))
    assert Stage.REJECTED == (await kit.result(workflow_id)).stage

    history = await kit.client.get_workflow_handle(workflow_id).fetch_history()
    replayer = Replayer(workflows=[], plugins=[restaurant.plugin(ledger=kit.ledger, decision_key=kit.decision_key)])
    result = await replayer.replay_workflow(
        WorkflowHistory.from_json(workflow_id, history.to_json()), raise_on_replay_failure=False
    )

    assert None is result.replay_failure
    patches = [
        json.loads(event.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for event in history.events
        if event.marker_recorded_event_attributes.marker_name == "core_patch"
    ]
    assert [DECISIONS_RECORDED_WHEN_VERIFIED] == patches


def test_an_attestation_survives_the_trip_through_temporal_and_covers_every_field() -> None:
    """The worker sees what the edge signed after the data converter's round trip (JSON values of every kind), and
    any field changed on the way breaks it; the groups claimed are not covered, since the run never uses them."""
    key = b"a-key-for-this-test-only-0123456789"
    request = DecisionRequest(
        case_id="C-1",
        decision=DecisionKind.CORRECT,
        operator="sam",
        reason='Ünïcode, and "quotes"',
        patch={"deal.amount_cents": 12, "deal.discount_pct": 2.5, "deal.po_number": None, "deal.tags": ("a", "b")},
    )
    converter = pydantic_data_converter.payload_converter
    attested = attest(request, key)
    arrived = converter.from_payload(converter.to_payload(attested), DecisionRequest)
    now = datetime.now(UTC)

    assert None is attestation_problem(arrived, key, at=now)
    assert None is attestation_problem(arrived.model_copy(update={"operator_groups": ("x",)}), key, at=now)
    for changed in ({"case_id": "C-2"}, {"decision": DecisionKind.REJECT}, {"operator": "fin"}, {"reason": "r"}):
        assert "does not match" in (attestation_problem(arrived.model_copy(update=changed), key, at=now) or "")
    moved = {"patch": {**request.patch, "deal.amount_cents": 13}}
    assert "does not match" in (attestation_problem(arrived.model_copy(update=moved), key, at=now) or "")
    later = {"issued_at": now}
    assert "does not match" in (attestation_problem(arrived.model_copy(update=later), key, at=now) or "")


async def test_the_decision_key_comes_from_the_settings_or_one_made_for_this_machine(tmp_path: Path) -> None:
    """HANDOFF_DECISION_KEY when set (32 characters at least); unset with SQLite, a key made once under the home,
    readable by its owner only, shared by racing processes; unset with a shared ledger, a clear error."""
    given = Settings(home=tmp_path, decision_key="k" * 32)
    local = Settings(home=tmp_path / "home", decision_key=None, database_url=None)
    shared = Settings(home=tmp_path, decision_key=None, database_url="postgresql+psycopg://ledger-db/handoff")

    made = await asyncio.gather(*(asyncio.to_thread(decision_key, local) for _ in range(8)))

    assert b"k" * 32 == decision_key(given)
    assert 1 == len(set(made)) and len(made[0]) >= 32
    path = tmp_path / "home" / "decision.key"
    assert (0o600, made[0]) == (stat.S_IMODE(os.stat(path).st_mode), path.read_text().strip().encode())
    assert ["decision.key"] == os.listdir(tmp_path / "home")  # no draft left behind
    with pytest.raises(MissingDecisionKey) as missing:
        decision_key(shared)
    assert "HANDOFF_DECISION_KEY is not set, and this ledger is shared" in str(missing.value)
    with pytest.raises(ValidationError) as short:
        Settings(decision_key="too short")
    assert "HANDOFF_DECISION_KEY must be 32 characters or more" in str(short.value)


async def test_only_an_operator_decides_even_a_viewer_listed_in_the_owner_group(kit: HandoffKit) -> None:
    """The ledger's role counts, not only its groups: a viewer's attested decision is refused and audited."""
    workflow_id, case = await open_deal_case(kit)
    add_operator(kit.ledger, "vic", ["sales-ops"], declared_groups=kit.app.catalog.group_names, role=Role.VIEWER)

    with pytest.raises(DecisionRefused) as refused:
        await kit.decide(workflow_id, case.id, DecisionKind.REJECT, operator="vic", groups=("sales-ops",))

    assert RefusalKind.UNAUTHORISED == refused.value.refusal.kind
    assert "'vic' is a viewer, and only operators decide cases" in str(refused.value)
    await assert_still_open(kit, workflow_id)
