"""The exception budget's activities and its release: may a run deliver, who hears of a hold, and waking held runs.

`check_budget` asks the ledger (`activities.ledger.budget`) before a run of a budgeted handoff delivers, and may
start the handoff's hold. `notify_budget_hold` tells the owner group through the app's notifiers, at most once per
hold and notifier however many runs meet it (the ledger's `notices` table, as for cases: `activities.notifications`).
`release_held_runs` is what the CLI and the API call after resuming or rejecting a hold: it signals each run the
ledger shows held, which then asks the ledger again. The signal carries nothing, so sending one forged changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from sqlalchemy import Engine
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from handoff.activities.ledger import budget as ledger_budget
from handoff.activities.notifications import (
    Notification,
    Notifier,
    NotifierFailed,
    NotifierProvider,
    claim_notice,
    notice_id,
    release_notice,
)
from handoff.schemas.activities import CaseNotice, NoticeEvent
from handoff.schemas.budget import (
    BUDGET_RELEASED,
    CHECK_BUDGET,
    NOTIFY_BUDGET_HOLD,
    BudgetAnswer,
    BudgetCheck,
    Hold,
    HoldNotice,
)

log = structlog.get_logger(__name__)


class BudgetActivities:
    """The budget's check and its notice, on one ledger and the app's notifiers."""

    def __init__(self, ledger: Engine, provider: NotifierProvider, *, link: Callable[[], str]) -> None:
        """`link`: the inbox page that lists held handoffs (read when the first notice is sent)."""
        self._ledger = ledger
        self._provider = provider
        self._link = link

    @activity.defn(name=CHECK_BUDGET)
    async def check_budget(self, check: BudgetCheck) -> BudgetAnswer:
        """Go, held or rejected; a run waiting on a hold the ledger lacks fails the activity for good."""
        try:
            return await asyncio.to_thread(ledger_budget.check_budget, self._ledger, check)
        except ledger_budget.UnknownHold as unknown:
            raise ApplicationError(str(unknown), type=ledger_budget.UnknownHold.__name__, non_retryable=True) from None

    @activity.defn(name=NOTIFY_BUDGET_HOLD)
    async def notify_budget_hold(self, notice: HoldNotice) -> None:
        """Send the hold's notice through every notifier that has not sent it; raise (retry) when one fails."""
        notifiers = list(self._provider.notifiers)
        if not notifiers or notice.hold.owner_group is None:
            return
        case_notice = hold_notice(notice)
        notification = Notification(notice=case_notice, link=self._link(), notice_id=notice_id(case_notice))
        outcomes = await asyncio.gather(
            *(self._send_once(notifier, notification) for notifier in notifiers), return_exceptions=True
        )
        failed = [f"{n.name}: {o}" for n, o in zip(notifiers, outcomes, strict=True) if isinstance(o, BaseException)]
        if failed:
            raise ApplicationError(
                f"The hold notice of {notice.hold.handoff!r} could not be sent through {'; '.join(failed)}; it is "
                "sent again on the next attempt.",
                type=NotifierFailed.__name__,
            )

    async def _send_once(self, notifier: Notifier, notification: Notification) -> None:
        """Claim, send, and give the claim back when sending fails (as `activities.notifications` does for cases)."""
        notice = notification.notice
        bound = log.bind(handoff=notice.handoff, workflow_id=notice.workflow_id, hold=notice.case_id)
        if not await asyncio.to_thread(claim_notice, self._ledger, notice, notifier.name):
            bound.info("budget.notice_already_sent", notifier=notifier.name)
            return
        try:
            await notifier.send(notification)
        except BaseException as error:
            await asyncio.shield(asyncio.to_thread(release_notice, self._ledger, notice, notifier.name))
            bound.warning("budget.notice_failed", notifier=notifier.name, error=f"{type(error).__name__}: {error}")
            raise
        bound.info("budget.notice_sent", notifier=notifier.name)


def hold_notice(notice: HoldNotice) -> CaseNotice:
    """The hold as the notifiers' notice: no case, so the hold's key stands where the case id would (`hold-<id>`),
    and its figures are the reasons."""
    hold = notice.hold
    return CaseNotice(
        workflow_id=notice.workflow_id,
        handoff=hold.handoff,
        case_id=hold_key(hold),
        event=NoticeEvent.BUDGET_HELD,
        owner_group=hold.owner_group or "",
        sla_deadline=hold.held_at,
        reasons=[
            f"{hold.runs_with_case} of {hold.runs} runs in the last {hold.window_seconds:g} s opened a case "
            f"({hold.case_rate:.0%}): its new runs wait before delivery until you resume or reject them."
        ],
        at=hold.held_at,
    )


def hold_key(hold: Hold) -> str:
    """The hold's name where a case id is expected (notices): `hold-<id>`."""
    return f"hold-{hold.id}"


async def release_held_runs(client: Client, ledger: Engine, handoff: str) -> list[str]:
    """Tell every run of `handoff` the ledger shows held to ask the ledger again; the ids of those told.

    A run that ended meanwhile, or that Temporal does not know, is skipped: its safety-net timer asks again anyway.
    """
    waiting = await asyncio.to_thread(ledger_budget.held_runs, ledger, handoff)
    in_flight = asyncio.Semaphore(SIGNALS_IN_FLIGHT)

    async def tell(workflow_id: str) -> bool:
        async with in_flight:
            try:
                await client.get_workflow_handle(workflow_id).signal(BUDGET_RELEASED)
            except RPCError as error:
                log.warning("budget.signal_failed", handoff=handoff, workflow_id=workflow_id, error=str(error))
                return False
        return True

    answers = await asyncio.gather(*(tell(workflow_id) for workflow_id in waiting))
    told = [workflow_id for workflow_id, sent in zip(waiting, answers, strict=True) if sent]
    log.info("budget.released", handoff=handoff, told=len(told))
    return told


SIGNALS_IN_FLIGHT = 20
"""A hold may keep thousands of runs waiting: they are told a few at a time, not one after the other."""
