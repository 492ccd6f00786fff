"""Reading the ledger for `handoff backtest`: the runs received in a window, with what their first case found.

The first case is the one judged on the payload as received (`runs.payload`); later cases judged a corrected
payload, or the same one again after a retry, so only the first says what the run's own look-ups answered. Runs whose
payloads were purged (`handoff purge`) have nothing left to replay and are left out. Blocks
(SQLAlchemy on a synchronous driver): async callers go through `asyncio.to_thread`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from handoff.activities.ledger.reads import utc
from handoff.activities.ledger.tables import CaseRow, RunRow, ViolationRow
from handoff.schemas.backtest import RecordedRun
from handoff.schemas.drift import DRIFT_EVENT


def recorded_runs(ledger: Engine, *, handoffs: Collection[str], since: datetime) -> list[RecordedRun]:
    """The runs of `handoffs` received at or after `since`, oldest first, each with its case count and the rules
    its first case broke."""
    # UTC, as the ledger stores it: SQLite compares the stored text and would misread another offset.
    window = (
        col(RunRow.handoff).in_(list(handoffs)),
        col(RunRow.received_at) >= since.astimezone(UTC),
        col(RunRow.purged_at).is_(None),
        RunRow.event != DRIFT_EVENT,  # a drift run holds the source's record now, not an event the rules judged
    )
    in_window = select(RunRow.workflow_id).where(*window)
    with Session(ledger) as session:
        runs = session.exec(
            select(RunRow).where(*window).order_by(col(RunRow.received_at), col(RunRow.workflow_id))
        ).all()
        cases = session.exec(
            select(CaseRow.workflow_id, CaseRow.id)
            .where(col(CaseRow.workflow_id).in_(in_window))
            .order_by(col(CaseRow.opened_at), col(CaseRow.id))
        ).all()
        violations = session.exec(
            select(ViolationRow.case_id, ViolationRow.rule)
            .join(CaseRow, col(CaseRow.id) == col(ViolationRow.case_id))
            .where(col(CaseRow.workflow_id).in_(in_window))
            .order_by(col(ViolationRow.case_id), col(ViolationRow.position))
        ).all()
    cases_of: dict[str, list[str]] = defaultdict(list)
    for workflow_id, case_id in cases:
        cases_of[workflow_id].append(case_id)
    rules_of: dict[str, list[str]] = defaultdict(list)
    for case_id, rule in violations:
        rules_of[case_id].append(rule)
    return [_recorded(run, cases_of.get(run.workflow_id, []), rules_of) for run in runs]


def _recorded(run: RunRow, case_ids: list[str], rules_of: dict[str, list[str]]) -> RecordedRun:
    first_case_rules = rules_of.get(case_ids[0], []) if case_ids else []
    return RecordedRun.model_validate(
        {
            **run.model_dump(),
            "received_at": utc(run.received_at),
            "cases": len(case_ids),
            "first_case_rules": first_case_rules,
        }
    )
