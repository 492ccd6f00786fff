"""Removing the event data of old runs from the ledger (`handoff purge`), while keeping their audit trail and figures.

A run's payload is a snapshot of someone's booking, order or account, and the ledger keeps it for as long as the run
matters: deciding its cases, answering `status`, backtesting a rule change. Once a run has ended (delivered, rejected
or failed) and is older than the retention, its snapshots go: the run's payload, its cases' payloads, the values its
violations broke with, what its corrections set, and what its deliveries wrote. What stays is everything the audit
and the report read: the rows themselves, stages and times, which rules broke on which field, every decision (who,
what, why, when) and escalation, refusals, and which fields a correction or a delivery touched (keys, without
values). `runs.purged_at` says when, so a read can say "purged on ..." instead of showing an empty payload.

Open runs are never purged: an operator may still have to decide them. Blocking (SQLAlchemy on a synchronous
driver): async callers go through `asyncio.to_thread`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Engine, func, update
from sqlmodel import Session, col, select

from handoff.activities.ledger.database import session_scope
from handoff.activities.ledger.reads import utc
from handoff.activities.ledger.tables import CaseRow, DecisionRow, DeliveryRow, RunRow, ViolationRow
from handoff.schemas.runs import Stage

log = structlog.get_logger(__name__)

PURGE_BATCH = 500
"""Runs purged per transaction: a large purge never holds SQLite's write lock (and the worker's writes) for long."""


def emptied(values: Mapping[str, Any]) -> dict[str, None]:
    """A snapshot's keys without their values: which fields were corrected or delivered stays in the audit trail,
    what they held does not."""
    return dict.fromkeys(values)


def count_purgeable(ledger: Engine, *, before: datetime) -> int:
    """How many runs `purge_runs(before=...)` would purge now (for `handoff purge --dry-run`)."""
    with Session(ledger) as session:
        return session.exec(select(func.count()).select_from(RunRow).where(*_purgeable(before))).one()


def purge_runs(ledger: Engine, *, before: datetime, now: datetime | None = None, batch: int = PURGE_BATCH) -> int:
    """Remove the payload snapshots of every run that ended before `before` and was not purged yet; return how many
    runs were purged. Running it again purges nothing twice."""
    purged_at = (now or datetime.now(UTC)).astimezone(UTC)
    total = 0
    while True:
        with session_scope(ledger) as session:
            ids = session.exec(
                select(RunRow.workflow_id)
                .where(*_purgeable(before))
                .order_by(col(RunRow.finished_at), col(RunRow.workflow_id))
                .limit(batch)
            ).all()
            if ids:
                _purge(session, list(ids), purged_at)
        total += len(ids)
        if len(ids) < batch:
            break
    log.info("ledger.purged", runs=total, before=before.astimezone(UTC).isoformat())
    return total


def purged_on(ledger: Engine, workflow_id: str) -> datetime | None:
    """When the run's payload snapshots were purged, or None (not purged, or no such run)."""
    with Session(ledger) as session:
        moment = session.exec(select(RunRow.purged_at).where(RunRow.workflow_id == workflow_id)).first()
    return utc(moment) if moment is not None else None


def _purgeable(before: datetime) -> tuple[ColumnElement[bool], ...]:
    final = [stage.value for stage in Stage if stage.is_final]
    # A run ended when it reached a final stage; `updated_at` stands in for a row that never had `finished_at`.
    ended_at = func.coalesce(col(RunRow.finished_at), col(RunRow.updated_at))
    # UTC, as the ledger stores it: SQLite compares the stored text and would misread another offset.
    return (
        col(RunRow.stage).in_(final),
        col(RunRow.purged_at).is_(None),
        ended_at < before.astimezone(UTC),
    )


def _purge(session: Session, workflow_ids: Sequence[str], purged_at: datetime) -> None:
    of_runs = col(CaseRow.workflow_id).in_(workflow_ids)
    session.exec(
        update(RunRow).where(col(RunRow.workflow_id).in_(workflow_ids)).values(payload={}, purged_at=purged_at)
    )
    session.exec(update(CaseRow).where(of_runs).values(payload={}))
    session.exec(
        update(ViolationRow).where(col(ViolationRow.case_id).in_(select(CaseRow.id).where(of_runs))).values(value=None)
    )
    # Corrections and deliveries keep their keys (which fields), so these are rewritten row by row.
    for decision in session.exec(select(DecisionRow).where(col(DecisionRow.workflow_id).in_(workflow_ids))).all():
        decision.patch = emptied(decision.patch)
    for delivery in session.exec(select(DeliveryRow).where(col(DeliveryRow.workflow_id).in_(workflow_ids))).all():
        delivery.fields = emptied(delivery.fields)
