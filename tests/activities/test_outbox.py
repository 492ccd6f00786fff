"""The notice outbox on both ledgers: a notice is queued once with its record, sent by one sender at a time, retried
with backoff when its notifier fails, given up after the last attempt, and taken again when its sender died."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, select

from handoff.activities.ledger.database import session_scope
from handoff.activities.ledger.outbox import lease_due, queue_notice
from handoff.activities.ledger.tables import OutboxNoticeRow
from handoff.activities.outbox import LEASE_BATCH, NoticeSender, backoff
from handoff.schemas.activities import CaseNotice, NoticeEvent

LEASE = timedelta(seconds=60)


def _notice(case_id: str = "C-1", event: NoticeEvent = NoticeEvent.OPENED, group: str = "hosts") -> CaseNotice:
    now = datetime.now(UTC)
    return CaseNotice(
        workflow_id="bookings/B-1",
        handoff="bookings",
        case_id=case_id,
        event=event,
        owner_group=group,
        sla_deadline=now + timedelta(hours=4),
        reasons=["A party size is required."],
        at=now,
    )


def _queue(ledger: Engine, *notices: CaseNotice) -> None:
    with session_scope(ledger) as session:
        for notice in notices:
            queue_notice(session, notice)


def _rows(ledger: Engine) -> list[OutboxNoticeRow]:
    with Session(ledger) as session:
        return list(session.exec(select(OutboxNoticeRow).order_by(OutboxNoticeRow.id)).all())


class Receiver:
    """The app's notifiers as the sender sees them: fails the first `failures` sends, records the rest."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.sent: list[CaseNotice] = []
        self.tries = 0

    async def send(self, notice: CaseNotice) -> None:
        self.tries += 1
        if self.tries <= self.failures:
            raise ConnectionRefusedError("the receiver is down")
        self.sent.append(notice)


def test_a_retried_write_queues_a_notice_once_per_case_event_and_group(ledger: Engine) -> None:
    _queue(ledger, _notice(), _notice())
    _queue(ledger, _notice(), _notice(event=NoticeEvent.ESCALATED, group="managers"))

    assert [("C-1", "opened", "hosts"), ("C-1", "escalated", "managers")] == [
        (row.case_id, row.event, row.owner_group) for row in _rows(ledger)
    ]


def test_two_senders_never_lease_the_same_notice(ledger: Engine) -> None:
    _queue(ledger, _notice("C-1"), _notice("C-2"))
    now = datetime.now(UTC)

    first = lease_due(ledger, now=now, lease=LEASE)
    second = lease_due(ledger, now=now, lease=LEASE)

    assert (["C-1", "C-2"], []) == ([leased.notice.case_id for leased in first], second)
    assert [1, 1] == [leased.attempt for leased in first]


def test_a_lease_that_ran_out_is_taken_again(ledger: Engine) -> None:
    """A sender that died mid-send leaves its lease; once it has passed, another sender takes the notice."""
    _queue(ledger, _notice())
    now = datetime.now(UTC)
    [held] = lease_due(ledger, now=now, lease=LEASE)

    assert [] == lease_due(ledger, now=now + LEASE - timedelta(seconds=1), lease=LEASE)
    [again] = lease_due(ledger, now=now + LEASE + timedelta(seconds=1), lease=LEASE)
    assert (held.id, 2) == (again.id, again.attempt)


async def test_the_sender_sends_each_notice_once_and_marks_it_sent(ledger: Engine) -> None:
    _queue(ledger, _notice("C-1"), _notice("C-2"))
    receiver = Receiver()
    sender = NoticeSender(ledger, receiver.send)

    assert 2 == await sender.send_due()
    assert 0 == await sender.send_due()
    assert ["C-1", "C-2"] == sorted(notice.case_id for notice in receiver.sent)
    assert all(row.sent_at is not None and row.error is None for row in _rows(ledger))


async def test_a_failed_send_waits_its_backoff_then_succeeds(ledger: Engine) -> None:
    _queue(ledger, _notice())
    receiver = Receiver(failures=1)
    sender = NoticeSender(ledger, receiver.send)

    assert 0 == await sender.send_due()
    [row] = _rows(ledger)
    assert (1, None, "ConnectionRefusedError: the receiver is down") == (row.attempts, row.sent_at, row.error)
    assert 0 == await sender.send_due()  # not due yet: the backoff of the first attempt is a second
    with session_scope(ledger) as session:  # the second passes
        stored = session.get(OutboxNoticeRow, row.id)
        assert stored is not None
        stored.due_at = datetime.now(UTC) - timedelta(milliseconds=1)
    assert 1 == await sender.send_due()
    assert 1 == len(receiver.sent)


async def test_a_notice_is_given_up_after_the_last_attempt(ledger: Engine) -> None:
    _queue(ledger, _notice())
    sender = NoticeSender(ledger, Receiver(failures=99).send, max_attempts=2)

    await sender.send_due()
    with session_scope(ledger) as session:
        for row in session.exec(select(OutboxNoticeRow)).all():
            row.due_at = datetime.now(UTC) - timedelta(milliseconds=1)
    await sender.send_due()

    [row] = _rows(ledger)
    assert (2, None) == (row.attempts, row.sent_at)
    assert row.gave_up_at is not None
    assert [] == lease_due(ledger, now=datetime.now(UTC) + timedelta(days=1), lease=LEASE)


@pytest.mark.parametrize(("attempt", "seconds"), [(1, 1), (2, 2), (4, 8), (7, 60), (10, 60)])
def test_backoff_doubles_up_to_a_minute(attempt: int, seconds: int) -> None:
    assert timedelta(seconds=seconds) == backoff(attempt)


def test_a_lease_takes_the_oldest_due_notices_up_to_its_limit(ledger: Engine) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    notices = [_notice(f"C-{n}").model_copy(update={"at": start + timedelta(seconds=n)}) for n in range(25)]
    _queue(ledger, *reversed(notices))
    now = datetime.now(UTC)

    first = lease_due(ledger, now=now, lease=LEASE, limit=20)
    rest = lease_due(ledger, now=now, lease=LEASE, limit=20)

    assert [f"C-{n}" for n in range(25)] == [leased.notice.case_id for leased in first + rest]
    assert (20, 5) == (len(first), len(rest))


def test_senders_leasing_at_the_same_time_share_the_notices(ledger: Engine) -> None:
    """Four senders lease at once, over and over: every notice is leased exactly once (on PostgreSQL, a row another
    sender took while this one waited for its lock no longer matches)."""
    _queue(ledger, *(_notice(f"C-{n}") for n in range(60)))
    now = datetime.now(UTC)

    def lease_all() -> list[int]:
        taken: list[int] = []
        while leased := lease_due(ledger, now=now, lease=LEASE, limit=7):
            taken += [notice.id for notice in leased]
        return taken

    with ThreadPoolExecutor(max_workers=4) as pool:
        taken = [notice_id for share in pool.map(lambda _: lease_all(), range(4)) for notice_id in share]

    assert sorted(taken) == sorted(row.id for row in _rows(ledger))


async def test_a_batch_is_leased_and_marked_sent_in_two_writes(ledger: Engine) -> None:
    """The lease, the mark, and the lease that finds nothing more (it was 20 leases and 20 marks)."""
    _queue(ledger, *(_notice(f"C-{n}") for n in range(LEASE_BATCH)))
    writes: list[str] = []

    def count_writes(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")):
            writes.append(statement)

    event.listen(ledger, "before_cursor_execute", count_writes)
    try:
        sent = await NoticeSender(ledger, Receiver().send).send_due()
    finally:
        event.remove(ledger, "before_cursor_execute", count_writes)

    assert (LEASE_BATCH, 3) == (sent, len(writes))


async def test_a_backlog_beyond_one_batch_is_sent_without_waiting_for_the_next_poll(ledger: Engine) -> None:
    """Until 2026-11-29 the sender sent one batch, then slept until woken or the poll: a backlog no new notice woke
    it for (a worker restarted with notices queued) went out at 20 a poll."""
    _queue(ledger, *(_notice(f"C-{n}") for n in range(2 * LEASE_BATCH + 5)))
    receiver = Receiver()
    sending = asyncio.create_task(NoticeSender(ledger, receiver.send, poll=60).run())
    try:
        async with asyncio.timeout(10):  # the poll is a minute away: only going on at once gets them all out
            while not all(row.sent_at is not None for row in await asyncio.to_thread(_rows, ledger)):
                await asyncio.sleep(0.05)
    finally:
        sending.cancel()

    assert 2 * LEASE_BATCH + 5 == len(receiver.sent)
