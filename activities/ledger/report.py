"""The operations report, computed from the ledger: did each handoff deliver the gain its contract promised?

Figures per handoff: runs by outcome, open cases, the exception rate, cycle time and decision latency percentiles,
escalations and manual touches, with the contract's declared gain marked met or not met; on request the same figures
per contract version, from the version each run was stamped with, so a new version can be set against the old one.
Percentiles are computed here in Python (nearest rank) from plain rows, so SQLite and PostgreSQL give the same
answer; times that SQLite returns naive are UTC.

Drift runs (opened by a drift check, event `drift`) are not the handoff's runs: they are left out of every figure
above, and counted apart, as drift cases per system whose copy (or source) they name.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from handoff.activities.ledger.reads import utc
from handoff.activities.ledger.tables import CaseRow, DecisionRow, EscalationRow, RunRow, ViolationRow
from handoff.schemas.cases import CaseStatus
from handoff.schemas.contract import Gain, HandoffContract, Measure
from handoff.schemas.drift import DRIFT_EVENT, DRIFT_KIND, DRIFT_RULE_PREFIX, SystemDrift
from handoff.schemas.report import (
    GainCheck,
    GainVerdict,
    GroupLatency,
    HandoffFigures,
    HandoffReport,
    Percentiles,
    Report,
    VersionReport,
)
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
    """The rows of one handoff (or of one of its contract versions), gathered before the figures are computed."""

    stages: Counter[str] = field(default_factory=Counter)
    cycle_seconds: list[float] = field(default_factory=list)
    runs_with_cases: set[str] = field(default_factory=set)
    open_cases: int = 0
    latency_by_group: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    operator_decisions: int = 0
    escalations: int = 0


@dataclass
class _Tallies:
    """Every row counted twice: in its handoff's tally and in its contract version's."""

    handoffs: dict[str, _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    versions: dict[tuple[str, int], _Tally] = field(default_factory=lambda: defaultdict(_Tally))
    version_of_run: dict[str, int] = field(default_factory=dict)
    run_of_case: dict[str, tuple[str, str]] = field(default_factory=dict)
    drift_runs: set[str] = field(default_factory=set)
    drift: dict[tuple[str, str], tuple[set[str], set[str]]] = field(default_factory=dict)
    """(handoff, system) -> (its drift cases, those still open)."""

    def of(self, handoff: str, workflow_id: str) -> list[_Tally]:
        """The tallies a row of this run counts in; a case whose run the ledger lacks counts in the handoff's only."""
        version = self.version_of_run.get(workflow_id)
        tallies = [self.handoffs[handoff]]
        return tallies if version is None else [*tallies, self.versions[handoff, version]]

    def of_case(self, case_id: str) -> list[_Tally]:
        """The tallies a row about this case counts in; none for a case not (yet) read, as an inner join has it."""
        handoff, workflow_id = self.run_of_case.get(case_id, ("", ""))
        return self.of(handoff, workflow_id) if handoff else []

    def versions_of(self, handoff: str) -> list[tuple[int, _Tally]]:
        return sorted((version, tally) for (name, version), tally in self.versions.items() if name == handoff)


def build_report(
    ledger: Engine, contracts: Sequence[HandoffContract], *, by_version: bool = False, now: datetime | None = None
) -> Report:
    """The report for every handoff of `contracts` (in their order), then any other handoff the ledger has runs of.

    Args:
        contracts: the app's contracts; several versions of a handoff may be given (`Handoffs.every_version()`):
            the newest sets the handoff's gain, and each its own version's.
        by_version: also split each handoff's figures by the contract version its runs were stamped with.
    """
    tallies = _gather(ledger)
    newest: dict[str, HandoffContract] = {}
    for contract in contracts:
        if contract.name not in newest or contract.version > newest[contract.name].version:
            newest[contract.name] = contract
    exact = {(contract.name, contract.version): contract for contract in contracts}
    names = list(dict.fromkeys(contract.name for contract in contracts))
    lines = []
    for name in names + sorted(set(tallies.handoffs) - set(newest)):
        line = _figures(HandoffReport, name, tallies.handoffs[name], newest.get(name))
        line.drift = [
            SystemDrift(system=system, cases=len(cases), open_cases=len(still_open))
            for (handoff, system), (cases, still_open) in sorted(tallies.drift.items())
            if handoff == name
        ]
        if by_version:
            line.versions = [
                _figures(
                    VersionReport, name, tally, exact.get((name, version), newest.get(name)), contract_version=version
                )
                for version, tally in tallies.versions_of(name)
            ]
        lines.append(line)
    return Report(generated_at=now or datetime.now(UTC), handoffs=lines)


def _gather(ledger: Engine) -> _Tallies:
    tallies = _Tallies()
    with Session(ledger) as session:
        tallies.drift_runs = set(session.exec(select(RunRow.workflow_id).where(RunRow.event == DRIFT_EVENT)).all())
        for workflow_id, handoff, version, stage in session.exec(
            select(RunRow.workflow_id, RunRow.handoff, RunRow.contract_version, RunRow.stage).where(
                RunRow.event != DRIFT_EVENT
            )
        ).all():
            tallies.version_of_run[workflow_id] = version
            for tally in tallies.of(handoff, workflow_id):
                tally.stages[stage] += 1
        for workflow_id, handoff, received_at, finished_at in session.exec(
            select(RunRow.workflow_id, RunRow.handoff, RunRow.received_at, RunRow.finished_at).where(
                RunRow.stage == Stage.DELIVERED.value, RunRow.event != DRIFT_EVENT
            )
        ).all():
            if finished_at is None:
                continue
            for tally in tallies.of(handoff, workflow_id):
                tally.cycle_seconds.append((utc(finished_at) - utc(received_at)).total_seconds())
        for case_id, handoff, workflow_id, status in session.exec(
            select(CaseRow.id, CaseRow.handoff, CaseRow.workflow_id, CaseRow.status)
        ).all():
            if workflow_id in tallies.drift_runs:
                continue  # counted apart, below; its decisions and escalations find no run (`of_case`)
            tallies.run_of_case[case_id] = (handoff, workflow_id)
            for tally in tallies.of(handoff, workflow_id):
                tally.runs_with_cases.add(workflow_id)
                tally.open_cases += status == CaseStatus.OPEN.value
        for case_id, opened_at, group, decided_at in session.exec(
            select(DecisionRow.case_id, CaseRow.opened_at, DecisionRow.group, DecisionRow.decided_at)
            .join(CaseRow, col(CaseRow.id) == col(DecisionRow.case_id))
            .where(col(DecisionRow.by_timeout).is_(False))
        ).all():
            for tally in tallies.of_case(case_id):
                tally.operator_decisions += 1
                if group is not None:
                    tally.latency_by_group[group].append((utc(decided_at) - utc(opened_at)).total_seconds())
        for case_id in session.exec(select(EscalationRow.case_id)).all():
            for tally in tallies.of_case(case_id):
                tally.escalations += 1
        _gather_drift(session, tallies)
    return tallies


def _gather_drift(session: Session, tallies: _Tallies) -> None:
    """Drift cases per handoff and the system each violation names (`drift: <system>`)."""
    for case_id, handoff, status, rule in session.exec(
        select(CaseRow.id, CaseRow.handoff, CaseRow.status, ViolationRow.rule)
        .join(ViolationRow, col(ViolationRow.case_id) == col(CaseRow.id))
        .where(ViolationRow.kind == DRIFT_KIND)
    ).all():
        cases, still_open = tallies.drift.setdefault((handoff, rule.removeprefix(DRIFT_RULE_PREFIX)), (set(), set()))
        cases.add(case_id)
        if status == CaseStatus.OPEN.value:
            still_open.add(case_id)


FiguresT = TypeVar("FiguresT", bound=HandoffFigures)


def _figures(
    model: type[FiguresT], handoff: str, tally: _Tally, contract: HandoffContract | None, **identity: int
) -> FiguresT:
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
    return model(
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
        **identity,
    )
