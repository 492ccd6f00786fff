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
    """Lease up to `limit` notices that are due and held by no live sender, oldest first."""
    free = or_(col(OutboxNoticeRow.lease_until).is_(None), col(OutboxNoticeRow.lease_until) < now)
    waiting = (
        col(OutboxNoticeRow.sent_at).is_(None),
        col(OutboxNoticeRow.gave_up_at).is_(None),
        col(OutboxNoticeRow.due_at) <= now,
        free,
    )
    leased: list[LeasedNotice] = []
    with session_scope(engine) as session:
        ids = session.exec(
            select(OutboxNoticeRow.id).where(*waiting).order_by(col(OutboxNoticeRow.due_at)).limit(limit)
        ).all()
    for notice_id in ids:
        with session_scope(engine) as session:
            # Compare and set: only one sender's update finds the notice still free.
            taken = session.execute(
                update(OutboxNoticeRow)
                .where(col(OutboxNoticeRow.id) == notice_id, *waiting)
                .values(lease_until=now + lease, attempts=col(OutboxNoticeRow.attempts) + 1)
            )
            if taken.rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult, for an UPDATE
                continue
            row = session.get(OutboxNoticeRow, notice_id)
            assert row is not None and row.id is not None
            leased.append(LeasedNotice(id=row.id, notice=CaseNotice.model_validate(row.notice), attempt=row.attempts))
    return leased


def mark_sent(engine: Engine, leased: LeasedNotice) -> None:
    with session_scope(engine) as session:
        row = session.get(OutboxNoticeRow, leased.id)
        if row is not None:
            row.sent_at = datetime.now(UTC)
            row.lease_until = None
            row.error = None


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
