"""The report over time, from the ledger: per handoff, the exception rate and the cycle time (p50) of the runs
received each day of a window (each week, for a window longer than `DAILY_UP_TO`), the rules its cases broke and how
they were decided.

Figures are computed as `report` computes them (nearest-rank percentiles in Python, SQLite's naive times read as
UTC), so a window's totals agree with the report over the same runs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from handoff.activities.ledger.reads import utc
from handoff.activities.ledger.report import gain_check, nearest_rank
from handoff.activities.ledger.tables import CaseRow, DecisionRow, RunRow, ViolationRow
from handoff.schemas.contract import HandoffContract, Measure
from handoff.schemas.drift import DRIFT_EVENT
from handoff.schemas.report_series import (
    Bucket,
    DecisionCount,
    HandoffSeries,
    ReportSeries,
    RuleCount,
    SeriesPoint,
)
from handoff.schemas.runs import Stage

DAILY_UP_TO = timedelta(days=62)
"""The longest window shown a point a day; a longer one gets a point a week, so a chart stays readable."""


@dataclass
class _Run:
    received_at: datetime
    delivered_after: float | None = None
    has_case: bool = False


@dataclass
class _Handoff:
    runs: dict[str, _Run] = field(default_factory=dict)
    rules: Counter[str] = field(default_factory=Counter)
    decisions: Counter[str] = field(default_factory=Counter)
    timeouts: Counter[str] = field(default_factory=Counter)


def bucket_for(since: datetime, now: datetime) -> Bucket:
    """A day for windows up to `DAILY_UP_TO`, else a week."""
    return Bucket.DAY if now - since <= DAILY_UP_TO else Bucket.WEEK


def bucket_start(day: date, bucket: Bucket) -> date:
    """The first day of the bucket holding `day`: itself, or its week's Monday."""
    return day if bucket is Bucket.DAY else day - timedelta(days=day.weekday())


def build_series(
    ledger: Engine, contracts: Sequence[HandoffContract], *, since: datetime, now: datetime | None = None
) -> ReportSeries:
    """Each handoff of `contracts` (newest version's gain), then any other with runs, over `since` .. `now`.

    Every bucket of the window has a point, those without runs too (with no figures), so time reads evenly.
    """
    now = now or datetime.now(UTC)
    since = since.astimezone(UTC)
    bucket = bucket_for(since, now)
    tallies = _gather(ledger, since)
    newest: dict[str, HandoffContract] = {}
    for contract in contracts:
        if contract.name not in newest or contract.version > newest[contract.name].version:
            newest[contract.name] = contract
    starts = _starts(since.date(), now.astimezone(UTC).date(), bucket)
    names = list(newest) + sorted(set(tallies) - set(newest))
    return ReportSeries(
        generated_at=now,
        since=since,
        bucket=bucket,
        handoffs=[_series(name, tallies.get(name, _Handoff()), newest.get(name), starts, bucket) for name in names],
    )


def _starts(first: date, last: date, bucket: Bucket) -> list[date]:
    step = timedelta(days=1 if bucket is Bucket.DAY else 7)
    day, starts = bucket_start(first, bucket), []
    while day <= last:
        starts.append(day)
        day += step
    return starts


def _gather(ledger: Engine, since: datetime) -> dict[str, _Handoff]:
    tallies: dict[str, _Handoff] = defaultdict(_Handoff)
    with Session(ledger) as session:
        for workflow_id, handoff, received_at in session.exec(
            select(RunRow.workflow_id, RunRow.handoff, RunRow.received_at).where(
                col(RunRow.received_at) >= since,
                RunRow.event != DRIFT_EVENT,  # a drift run is not a handoff's run
            )
        ).all():
            tallies[handoff].runs[workflow_id] = _Run(utc(received_at))
        for workflow_id, handoff, finished_at in session.exec(
            select(RunRow.workflow_id, RunRow.handoff, RunRow.finished_at).where(
                col(RunRow.received_at) >= since, RunRow.stage == Stage.DELIVERED.value
            )
        ).all():
            run = tallies[handoff].runs.get(workflow_id)
            if run is not None and finished_at is not None:
                run.delivered_after = (utc(finished_at) - run.received_at).total_seconds()
        for handoff, workflow_id in session.exec(select(CaseRow.handoff, CaseRow.workflow_id)).all():
            run = tallies[handoff].runs.get(workflow_id) if handoff in tallies else None
            if run is not None:
                run.has_case = True
        for handoff, _case, rule in session.exec(  # the case id keeps DISTINCT to one count per case and rule
            select(CaseRow.handoff, CaseRow.id, ViolationRow.rule)
            .join(ViolationRow, col(ViolationRow.case_id) == col(CaseRow.id))
            .where(col(CaseRow.opened_at) >= since)
            .distinct()
        ).all():
            tallies[handoff].rules[rule] += 1
        for handoff, decision, by_timeout in session.exec(
            select(DecisionRow.handoff, DecisionRow.decision, DecisionRow.by_timeout).where(
                col(DecisionRow.decided_at) >= since
            )
        ).all():
            tallies[handoff].decisions[decision] += 1
            tallies[handoff].timeouts[decision] += bool(by_timeout)
    return tallies


def _rate(runs: Sequence[_Run]) -> float | None:
    return round(100 * sum(run.has_case for run in runs) / len(runs), 4) if runs else None


def _p50(runs: Sequence[_Run]) -> float | None:
    return nearest_rank([run.delivered_after for run in runs if run.delivered_after is not None], 50)


def _series(
    name: str, tally: _Handoff, contract: HandoffContract | None, starts: list[date], bucket: Bucket
) -> HandoffSeries:
    by_bucket: dict[date, list[_Run]] = defaultdict(list)
    for run in tally.runs.values():
        by_bucket[bucket_start(run.received_at.date(), bucket)].append(run)
    runs = list(tally.runs.values())
    rate, p50 = _rate(runs), _p50(runs)
    measured = {Measure.CYCLE_TIME: p50, Measure.EXCEPTION_RATE: rate}
    gain = contract.gain if contract else None
    return HandoffSeries(
        handoff=name,
        runs=len(runs),
        exception_rate_pct=rate,
        cycle_time_p50=p50,
        gain=gain_check(gain, measured.get(gain.measure, _touches(tally, runs))) if gain else None,
        points=[
            SeriesPoint(
                start=start,
                runs=len(in_bucket),
                delivered=sum(run.delivered_after is not None for run in in_bucket),
                runs_with_cases=sum(run.has_case for run in in_bucket),
                exception_rate_pct=_rate(in_bucket),
                cycle_time_p50=_p50(in_bucket),
            )
            for start in starts
            for in_bucket in [by_bucket.get(start, [])]
        ],
        cases_by_rule=[RuleCount(rule=rule, cases=count) for rule, count in _most_first(tally.rules)],
        decisions_by_kind=[
            DecisionCount(kind=kind, decisions=count, by_timeout=tally.timeouts[kind])
            for kind, count in _most_first(tally.decisions)
        ],
    )


def _touches(tally: _Handoff, runs: Sequence[_Run]) -> float | None:
    """Decisions per run in the window, operator ones only (the contract's at its SLA is no touch)."""
    if not runs:
        return None
    operator = sum(tally.decisions.values()) - sum(tally.timeouts.values())
    return round(operator / len(runs), 4)


def _most_first(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
