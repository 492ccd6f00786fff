"""The exception budget on the real dev server: a burst of bad events past the tolerance holds the handoff; good events
arriving meanwhile wait in stage held and reach no target; a resume delivers each exactly once, a rejection ends them
rejected, and a `budget-released` signal sent without a decision releases nothing. Every hold is audited.

The target is a test adapter that counts its writes (the adapter boundary is where a fake belongs), and the notifier
one that keeps what it is sent (where the operators' chat would be).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client

from handoff import Handoffs, WriteOutcome
from handoff.activities.budget import release_held_runs
from handoff.activities.ledger.budget import active_hold, decide_hold, holds_of
from handoff.activities.notifications import Notification
from handoff.schemas.activities import NoticeEvent
from handoff.schemas.budget import BUDGET_RELEASED, HoldState
from handoff.schemas.contract import DecisionKind, ExceptionBudget, ExceptionPolicy
from handoff.schemas.runs import Stage
from handoff.workers.testkit import HandoffKit, running_handoffs
from tests.workflows.sample_contracts import GROUPS, NAME, ready_contract

BAD_BURST = 4
"""Bad events sent first: with min_runs 4 and at most half the runs opening a case, the next run trips the budget."""


class CountingPos:
    """Takes every record and counts its writes per record, so a test can say "delivered exactly once"."""

    def __init__(self) -> None:
        self.writes: Counter[str] = Counter()

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        self.writes[str(fields["booking_ref"])] += 1
        return WriteOutcome.WRITTEN


class KeptNotices:
    """A notifier that keeps what it is sent."""

    name = "kept"

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        self.sent.append(notification)


def budgeted_app(pos: CountingPos, notices: KeptNotices) -> Handoffs:
    policy = ExceptionPolicy(
        owner="hosts",
        escalation=("managers",),
        on_timeout=DecisionKind.REJECT,
        budget=ExceptionBudget(max_case_rate=0.5, min_runs=BAD_BURST),
    )
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(exceptions=policy),))
    app.source("bookings")
    app.system("pos", pos)
    app.notify(notices)
    return app


def booking(*, bad: bool) -> dict[str, Any]:
    """A bad booking has no party size (the contract's one rule): it opens a case."""
    booking: dict[str, Any] = {"id": f"B-{uuid.uuid4().hex[:8]}"}
    if not bad:
        booking["party_size"] = 2
    return {"booking": booking, "guest": {"name": "Ada"}}


@asynccontextmanager
async def tripped(client: Client, tmp_path: Path, app: Handoffs) -> AsyncIterator[HandoffKit]:
    """A kit for `app` whose handoff a burst of bad events has tripped: every bad run holds an open case."""
    async with running_handoffs(client, app, tmp_path) as kit:
        for _ in range(BAD_BURST):
            accepted = await kit.send("booking.confirmed", booking(bad=True))
            await kit.open_case(accepted.workflow_id)
        yield kit


async def send_held(kit: HandoffKit, count: int) -> list[tuple[str, str]]:
    """Send `count` good events and wait until each waits in stage held: (workflow id, booking id)."""
    held = []
    for _ in range(count):
        payload = booking(bad=False)
        accepted = await kit.send("booking.confirmed", payload)
        await kit.wait_for_stage(accepted.workflow_id, Stage.HELD)
        held.append((accepted.workflow_id, payload["booking"]["id"]))
    return held


async def _decide(kit: HandoffKit, state: HoldState, reason: str) -> list[str]:
    """Resume or reject as an operator of the owner group, as the CLI and the API do: the ledger, then the runs."""
    operator = kit.operator("ana", ("hosts",))
    await asyncio.to_thread(decide_hold, kit.ledger, NAME, state, operator, reason, at=datetime.now(UTC))
    return await release_held_runs(kit.client, kit.ledger, NAME)


async def test_good_events_wait_while_held_and_a_resume_delivers_each_exactly_once(
    client: Client, tmp_path: Path
) -> None:
    """Two good events after the burst are held (the POS has nothing); the resume delivers each once, audited."""
    pos, notices = CountingPos(), KeptNotices()
    async with tripped(client, tmp_path, budgeted_app(pos, notices)) as kit:
        held = await send_held(kit, 2)
        hold = active_hold(kit.ledger, NAME)
        await asyncio.sleep(0.5)  # time enough for a delivery that should not happen
        assert {} == dict(pos.writes)
        assert hold is not None and (BAD_BURST + 1, BAD_BURST) == (hold.runs, hold.runs_with_case)
        assert 2 == hold.held_runs

        told = await _decide(kit, HoldState.RESUMED, "the source is fixed")
        results = [await kit.result(workflow_id) for workflow_id, _ in held]
        after = booking(bad=False)
        fresh = await kit.send("booking.confirmed", after)
        fresh_result = await kit.result(fresh.workflow_id)

    assert sorted(workflow_id for workflow_id, _ in held) == sorted(told)
    assert [Stage.DELIVERED, Stage.DELIVERED] == [result.stage for result in results]
    assert {booking: 1 for _, booking in held} | {after["booking"]["id"]: 1} == dict(pos.writes)
    assert Stage.DELIVERED == fresh_result.stage  # the count starts afresh after the resume
    [audited] = holds_of(kit.ledger, NAME)
    assert (HoldState.RESUMED, "ana", "the source is fixed", "hosts") == (
        audited.state,
        audited.decided_by,
        audited.reason,
        audited.owner_group,
    )
    assert audited.decided_at is not None and audited.decided_at >= audited.held_at
    # Once per hold, though two runs met it (the bad runs' cases were notified as ever).
    [notice] = [sent for sent in notices.sent if sent.notice.event is NoticeEvent.BUDGET_HELD]
    assert (NoticeEvent.BUDGET_HELD, f"hold-{audited.id}", "hosts") == (
        notice.notice.event,
        notice.notice.case_id,
        notice.notice.owner_group,
    )
    assert notice.link.endswith("/inbox")


async def test_a_rejection_ends_the_held_runs_rejected_with_the_reason(client: Client, tmp_path: Path) -> None:
    """Rejecting the hold ends each held run rejected, its failure naming the hold, who and why; nothing delivered."""
    pos, notices = CountingPos(), KeptNotices()
    async with tripped(client, tmp_path, budgeted_app(pos, notices)) as kit:
        held = await send_held(kit, 1)
        await _decide(kit, HoldState.REJECTED, "the feed sends garbage")
        [(workflow_id, _)] = held
        result = await kit.result(workflow_id)
        status = await kit.status(workflow_id)

    assert Stage.REJECTED == result.stage
    assert {} == dict(pos.writes)
    assert status.failure is not None and "rejected by ana: the feed sends garbage" in status.failure
    [audited] = holds_of(kit.ledger, NAME)
    assert HoldState.REJECTED == audited.state


async def test_a_signal_without_a_decision_releases_nothing(client: Client, tmp_path: Path) -> None:
    """A `budget-released` signal sent straight to Temporal makes the run ask the ledger, which still says held."""
    pos, notices = CountingPos(), KeptNotices()
    async with tripped(client, tmp_path, budgeted_app(pos, notices)) as kit:
        [(workflow_id, _)] = await send_held(kit, 1)
        await kit.client.get_workflow_handle(workflow_id).signal(BUDGET_RELEASED)
        await asyncio.sleep(1.0)
        status = await kit.status(workflow_id)
        hold = active_hold(kit.ledger, NAME)
        await _decide(kit, HoldState.REJECTED, "clean up the test")
        await kit.result(workflow_id)

    assert Stage.HELD == status.stage
    assert {} == dict(pos.writes)
    assert hold is not None and HoldState.HELD == hold.state
