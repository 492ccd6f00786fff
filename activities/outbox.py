"""The outbox sender: every worker sends the notices the ledger queued (`activities.ledger.outbox`), until each is
taken, retried with backoff, also after the case's run has ended.

It runs beside the worker (the plugin starts it with the worker and stops it with it), wakes as soon as a ledger write
of the same process queued a notice, and otherwise looks for due notices every `poll` seconds: another worker's, and
those whose earlier attempt failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Engine

from handoff.activities.ledger.outbox import LeasedNotice, lease_due, mark_sent, retry_later
from handoff.schemas.activities import CaseNotice

log = structlog.get_logger(__name__)

MAX_ATTEMPTS = 10
"""As many as the notification activity's retry policy allows: then the notice is given up (the case is in the
inbox; the SLA warning and the escalation notify again)."""
LEASE_BATCH = 20
"""Notices leased, sent and marked together."""
LEASE = timedelta(seconds=60)
"""Longer than any notifier may take (each times out within 30 seconds): a lease that runs out means its sender died."""


def backoff(attempt: int) -> timedelta:
    """1, 2, 4 ... seconds after each failed attempt, at most a minute, as the activity's retry policy waited."""
    return timedelta(seconds=min(2 ** (attempt - 1), 60))


class NoticeSender:
    """Sends the ledger's due notices through `send` (the app's notifiers, each at most once per notice)."""

    def __init__(
        self,
        ledger: Engine,
        send: Callable[[CaseNotice], Awaitable[None]],
        *,
        poll: float = 1.0,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._ledger = ledger
        self._send = send
        self._poll = poll
        self._max_attempts = max_attempts
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A notice was just queued (by a ledger write of this process): look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Send due notices until cancelled. A ledger that is down is logged and tried again at the next poll."""
        while True:
            try:
                await self.send_due()
            except Exception as error:  # the ledger is unreachable: the notices wait there, the worker goes on
                log.warning("outbox.unavailable", error=f"{type(error).__name__}: {error}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            self._wake.clear()

    async def send_due(self) -> int:
        """Send every notice due now, a batch after another while batches come back full; the number sent."""
        sent = 0
        while True:
            leased, sent_now = await self._lease_and_send()
            sent += sent_now
            if leased < LEASE_BATCH:
                return sent

    async def _lease_and_send(self) -> tuple[int, int]:
        """Lease a batch of due notices, send them side by side, and mark those sent in one write: how many were
        leased, and how many sent. A sender that dies before the mark leaves leases that run out; the notices are
        taken again, and each notifier's own record keeps it from sending twice."""
        leased = await asyncio.to_thread(lease_due, self._ledger, now=datetime.now(UTC), lease=LEASE, limit=LEASE_BATCH)
        outcomes = await asyncio.gather(*(self._send_one(notice) for notice in leased))
        sent = [notice for notice, ok in zip(leased, outcomes, strict=True) if ok]
        await asyncio.to_thread(mark_sent, self._ledger, sent)
        return len(leased), len(sent)

    async def _send_one(self, leased: LeasedNotice) -> bool:
        notice = leased.notice
        bound = log.bind(
            handoff=notice.handoff,
            workflow_id=notice.workflow_id,
            case_id=notice.case_id,
            notice_event=notice.event.value,
            attempt=leased.attempt,
        )
        try:
            await self._send(notice)
        except Exception as error:
            last = leased.attempt >= self._max_attempts
            due = None if last else datetime.now(UTC) + backoff(leased.attempt)
            await asyncio.to_thread(retry_later, self._ledger, leased, f"{type(error).__name__}: {error}", due_at=due)
            if last:
                bound.error("outbox.gave_up", error=str(error))
            else:
                bound.warning("outbox.retry_later", error=str(error), due_at=due)
            return False
        bound.info("outbox.sent")
        return True
