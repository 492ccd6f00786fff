"""The notice outbox in the ledger: notices about cases, queued with the record they go with, sent by the workers.

A notice queued in the same transaction as the case it announces is sent if and only if the case is in the ledger:
no notice about a case that was never recorded, none lost because its run ended before a notifier came back. The
workflow pays nothing for it (no activity, no workflow task): the ledger write it makes anyway carries the notice.

Any number of workers send from the same outbox. A sender *leases* a notice before sending it (a compare-and-set on
`lease_until`, which works the same on SQLite and PostgreSQL); a sender that dies mid-send leaves a lease that runs
out, and another sender takes the notice again. Each notifier still sends a notice at most once (`notices`, see
`activities.notifications`), so a second sender only sends through the notifiers the first did not reach.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from handoff.activities.ledger.database import session_scope
from handoff.activities.ledger.tables import OutboxNoticeRow
from handoff.schemas.activities import CaseNotice

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LeasedNotice:
    """A notice a sender holds until `lease_until`, on its `attempt`-th try."""

    id: int
    notice: CaseNotice
    attempt: int


def queue_notice(session: Session, notice: CaseNotice) -> None:
    """Queue `notice` in the caller's transaction, once per case, event and group (a retried write queues nothing)."""
    existing = session.exec(
        select(OutboxNoticeRow.id).where(
            OutboxNoticeRow.case_id == notice.case_id,
            OutboxNoticeRow.event == notice.event.value,
            OutboxNoticeRow.owner_group == notice.owner_group,
        )
    ).first()
    if existing is not None:
        return
    session.add(
        OutboxNoticeRow(
            case_id=notice.case_id,
            event=notice.event.value,
            owner_group=notice.owner_group,
            workflow_id=notice.workflow_id,
            handoff=notice.handoff,
            notice=notice.model_dump(mode="json"),
            due_at=notice.at,
        )
    )


def lease_due(engine: Engine, *, now: datetime, lease: timedelta, limit: int = 20) -> list[LeasedNotice]:
    """Lease up to `limit` notices that are due and held by no live sender, oldest first.

    One statement: an UPDATE that takes the oldest due notices and re-checks, row by row, that each is still free as
    it takes it (on PostgreSQL, a row another sender took meanwhile no longer matches once its lock is released;
    SQLite has one writer at a time). A lease is one write, not one per notice."""
    free = or_(col(OutboxNoticeRow.lease_until).is_(None), col(OutboxNoticeRow.lease_until) < now)
    waiting = (
        col(OutboxNoticeRow.sent_at).is_(None),
        col(OutboxNoticeRow.gave_up_at).is_(None),
        col(OutboxNoticeRow.due_at) <= now,
        free,
    )
    oldest = select(OutboxNoticeRow.id).where(*waiting).order_by(col(OutboxNoticeRow.due_at)).limit(limit)
    with session_scope(engine) as session:
        taken = session.execute(
            update(OutboxNoticeRow)
            .where(col(OutboxNoticeRow.id).in_(oldest), *waiting)
            .values(lease_until=now + lease, attempts=col(OutboxNoticeRow.attempts) + 1)
            .returning(
                col(OutboxNoticeRow.id),
                col(OutboxNoticeRow.notice),
                col(OutboxNoticeRow.attempts),
                col(OutboxNoticeRow.due_at),
            )
        ).all()
    return [
        LeasedNotice(id=row.id, notice=CaseNotice.model_validate(row.notice), attempt=row.attempts)
        for row in sorted(taken, key=lambda row: (row.due_at, row.id))
    ]


def mark_sent(engine: Engine, sent: Sequence[LeasedNotice]) -> None:
    """Mark notices sent, in one write."""
    if not sent:
        return
    with session_scope(engine) as session:
        session.execute(
            update(OutboxNoticeRow)
            .where(col(OutboxNoticeRow.id).in_([leased.id for leased in sent]))
            .values(sent_at=datetime.now(UTC), lease_until=None, error=None)
        )


def retry_later(engine: Engine, leased: LeasedNotice, error: str, *, due_at: datetime | None) -> None:
    """Give the notice back to be tried again at `due_at`; None: give up (the last attempt failed)."""
    with session_scope(engine) as session:
        row = session.get(OutboxNoticeRow, leased.id)
        if row is None:
            return
        row.lease_until = None
        row.error = error[:1000]
        if due_at is None:
            row.gave_up_at = datetime.now(UTC)
        else:
            row.due_at = due_at
