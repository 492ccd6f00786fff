"""The operations report, computed from the ledger: did each handoff deliver the gain its contract promised?

Figures per handoff: runs by outcome, open cases, the exception rate, cycle time and decision latency percentiles,
escalations and manual touches, with the contract's declared gain marked met or not met. Percentiles are computed
here in Python (nearest rank) from plain rows, so SQLite and PostgreSQL give the same answer; times that SQLite
returns naive are UTC.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from handoff.activities.ledger.reads import utc
from handoff.activities.ledger.tables import CaseRow, DecisionRow, EscalationRow, RunRow
from handoff.schemas.cases import CaseStatus
from handoff.schemas.contract import Gain, HandoffContract, Measure
from handoff.schemas.report import GainCheck, GainVerdict, GroupLatency, HandoffReport, Percentiles, Report
from handoff.schemas.runs import Stage


def nearest_rank(values: Sequence[float], percentile: int) -> float | None:
    """The nearest-rank percentile: the smallest value with at least `percentile`% of the values at or below it."""
    if not values:
        return None
    if not 0 < percentile <= 100:
        raise ValueError(f"a percentile is in (0, 100], got {percentile}")
    ordered = sorted(values)
    rank = -(-percentile * len(ordered) // 100)  # ceil(p/100 * n) in integers: no float rounding at the edges
    return ordered[rank - 1]


def percentiles(values: Sequence[float]) -> Percentiles:
    """p50 and p95 of `values` (seconds)."""
    return Percentiles(count=len(values), p50=nearest_rank(values, 50), p95=nearest_rank(values, 95))


def gain_check(gain: Gain, actual: float | None) -> GainCheck:
    """The declared gain against the measured value; every measure is lower-is-better."""
    if gain.target is None:
        verdict = GainVerdict.NO_TARGET
    elif actual is None:
        verdict = GainVerdict.NO_DATA
    else:
        verdict = GainVerdict.MET if actual <= gain.target else GainVerdict.NOT_MET
    return GainCheck(
        metric=gain.metric,
        measure=gain.measure,
        unit=gain.unit,
        baseline=gain.baseline,
        target=gain.target,
        actual=actual,
        verdict=verdict,
    )


@dataclass
class _Tally:
    """The rows of one handoff, gathered before the figures are computed."""

    stages: Counter[str] = field(default_factory=Counter)
    cycle_seconds: list[float] = field(default_factory=list)
    runs_with_cases: set[str] = field(default_factory=set)
    open_cases: int = 0
    latency_by_group: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    operator_decisions: int = 0
    escalations: int = 0


def build_report(ledger: Engine, contracts: Sequence[HandoffContract], *, now: datetime | None = None) -> Report:
    """The report for every contract given (in their order), then any other handoff the ledger has runs of."""
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    with Session(ledger) as session:
        for handoff, stage, received_at, finished_at in session.exec(
            select(RunRow.handoff, RunRow.stage, RunRow.received_at, RunRow.finished_at)
        ).all():
            tally = tallies[handoff]
            tally.stages[stage] += 1
            if stage == Stage.DELIVERED.value and finished_at is not None:
                tally.cycle_seconds.append((utc(finished_at) - utc(received_at)).total_seconds())
        for handoff, workflow_id, status in session.exec(
            select(CaseRow.handoff, CaseRow.workflow_id, CaseRow.status)
        ).all():
            tallies[handoff].runs_with_cases.add(workflow_id)
            tallies[handoff].open_cases += status == CaseStatus.OPEN.value
        for handoff, opened_at, group, decided_at in session.exec(
            select(CaseRow.handoff, CaseRow.opened_at, DecisionRow.group, DecisionRow.decided_at)
            .join(CaseRow, col(CaseRow.id) == col(DecisionRow.case_id))
            .where(col(DecisionRow.by_timeout).is_(False))
        ).all():
            tallies[handoff].operator_decisions += 1
            if group is not None:
                tallies[handoff].latency_by_group[group].append((utc(decided_at) - utc(opened_at)).total_seconds())
        for handoff in session.exec(
            select(CaseRow.handoff).join(EscalationRow, col(EscalationRow.case_id) == col(CaseRow.id))
        ).all():
            tallies[handoff].escalations += 1

    by_name = {contract.name: contract for contract in contracts}
    names = [contract.name for contract in contracts] + sorted(set(tallies) - set(by_name))
    return Report(
        generated_at=now or datetime.now(UTC),
        handoffs=[_handoff_report(name, tallies[name], by_name.get(name)) for name in names],
    )


def _handoff_report(handoff: str, tally: _Tally, contract: HandoffContract | None) -> HandoffReport:
    runs = sum(tally.stages.values())
    exception_rate = round(100 * len(tally.runs_with_cases) / runs, 4) if runs else None
    touches = round(tally.operator_decisions / runs, 4) if runs else None
    cycle_time = percentiles(tally.cycle_seconds)
    measured = {
        Measure.CYCLE_TIME: cycle_time.p50,
        Measure.EXCEPTION_RATE: exception_rate,
        Measure.MANUAL_TOUCHES: touches,
    }
    gain = contract.gain if contract else None
    return HandoffReport(
        handoff=handoff,
        runs=runs,
        delivered=tally.stages[Stage.DELIVERED.value],
        rejected=tally.stages[Stage.REJECTED.value],
        failed=tally.stages[Stage.FAILED.value],
        open_cases=tally.open_cases,
        exception_rate_pct=exception_rate,
        cycle_time=cycle_time,
        decision_latency=[
            GroupLatency(group=group, seconds=percentiles(seconds))
            for group, seconds in sorted(tally.latency_by_group.items())
        ],
        escalations=tally.escalations,
        manual_touches_per_run=touches,
        gain=gain_check(gain, measured[gain.measure]) if gain else None,
    )
