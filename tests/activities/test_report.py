"""The report from known ledger rows: exact percentiles, rates, latencies per group, and gains met or not met."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from examples.restaurant import app as restaurant
from examples.restaurant import reservation_to_pos
from handoff.activities.ledger.report import build_report, nearest_rank
from handoff.activities.ledger.tables import CaseRow, DecisionRow, EscalationRow, RunRow
from handoff.schemas.contract import HandoffContract
from handoff.schemas.report import GainVerdict, HandoffReport, Percentiles

T0 = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def add_run(
    session: Session, handoff: str, key: str, stage: str, finished_after: float | None = None, *, version: int = 1
) -> str:
    workflow_id = f"{handoff}/{key}"
    session.add(
        RunRow(
            workflow_id=workflow_id,
            handoff=handoff,
            event="test.event",
            dedupe_key=key,
            contract_version=version,
            contract_hash="hash",
            stage=stage,
            last_step=1,
            payload={},
            received_at=T0,
            updated_at=at(finished_after or 0),
            finished_at=at(finished_after) if finished_after is not None else None,
        )
    )
    return workflow_id


def add_case(session: Session, workflow_id: str, case_id: str, *, opened_after: float, owner: str) -> None:
    session.add(
        CaseRow(
            id=case_id,
            workflow_id=workflow_id,
            handoff=workflow_id.split("/")[0],
            owner_group=owner,
            status="open",
            opened_at=at(opened_after),
            sla_deadline=at(opened_after + 3600),
            allowed=["approve", "reject"],
            payload={},
        )
    )
    session.flush()


def decide(session: Session, case_id: str, *, after: float, group: str | None, by_timeout: bool = False) -> None:
    case = session.get(CaseRow, case_id)
    assert case is not None
    case.status, case.decision, case.decided_at = "decided", "approve", at(after)
    session.add(
        DecisionRow(
            case_id=case_id,
            workflow_id=case.workflow_id,
            handoff=case.handoff,
            decision="reject" if by_timeout else "approve",
            operator="contract" if by_timeout else "ada",
            group=group,
            reason="test",
            decided_at=at(after),
            by_timeout=by_timeout,
        )
    )


def escalate(session: Session, case_id: str, workflow_id: str, from_group: str, to_group: str) -> None:
    session.add(
        EscalationRow(case_id=case_id, workflow_id=workflow_id, from_group=from_group, to_group=to_group, at=at(1800))
    )


@pytest.fixture
def reports(ledger: Engine) -> dict[str, HandoffReport]:
    """A ledger with known runs for two handoffs of the catalog and one the catalog no longer has."""
    with Session(ledger) as session:
        add_run(session, "reservation-to-pos", "R1", "delivered", finished_after=10)
        r2 = add_run(session, "reservation-to-pos", "R2", "delivered", finished_after=30)
        add_case(session, r2, "C-R2", opened_after=1, owner="front-of-house")
        decide(session, "C-R2", after=21, group="front-of-house")
        r3 = add_run(session, "reservation-to-pos", "R3", "rejected", finished_after=3601)
        add_case(session, r3, "C-R3", opened_after=1, owner="front-of-house")
        escalate(session, "C-R3", r3, "front-of-house", "restaurant-managers")
        decide(session, "C-R3", after=3601, group=None, by_timeout=True)
        add_run(session, "reservation-to-pos", "R4", "delivered", finished_after=50)
        r5 = add_run(session, "reservation-to-pos", "R5", "awaiting-decision")
        add_case(session, r5, "C-R5", opened_after=2, owner="front-of-house")

        d1 = add_run(session, "lead-to-invoice", "D1", "delivered", finished_after=200)
        add_case(session, d1, "C-D1", opened_after=0, owner="sales-ops")
        decide(session, "C-D1", after=100, group="sales-ops")
        d2 = add_run(session, "lead-to-invoice", "D2", "failed", finished_after=5000)
        add_case(session, d2, "C-D2", opened_after=0, owner="sales-ops")
        escalate(session, "C-D2", d2, "sales-ops", "finance")
        decide(session, "C-D2", after=4000, group="finance")
        add_run(session, "lead-to-invoice", "D3", "delivered", finished_after=20)
        add_run(session, "lead-to-invoice", "D4", "delivered", finished_after=40)

        add_run(session, "retired-handoff", "X1", "delivered", finished_after=5)
        session.commit()
    report = build_report(ledger, restaurant.catalog.contracts, now=at(7200))
    return {handoff.handoff: handoff for handoff in report.handoffs}


def test_nearest_rank_picks_the_smallest_value_covering_the_percentile() -> None:
    """Nearest rank on unsorted input: p50 of 1..20 is 10, p95 is 19; a single value is every percentile."""
    values = [float(v) for v in reversed(range(1, 21))]
    assert (10.0, 19.0, 20.0) == (nearest_rank(values, 50), nearest_rank(values, 95), nearest_rank(values, 100))
    ten = [float(v) for v in range(1, 11)]
    assert (5.0, 10.0) == (nearest_rank(ten, 50), nearest_rank(ten, 95))
    assert (7.0, 7.0, None) == (nearest_rank([7.0], 50), nearest_rank([7.0], 95), nearest_rank([], 50))


def test_report_lists_catalog_handoffs_in_order_then_the_ledger_only_ones(reports: dict[str, HandoffReport]) -> None:
    """Every catalog contract has a line even without runs; a handoff known only to the ledger comes last."""
    assert ["reservation-to-pos", "lead-to-invoice", "order-to-kitchen", "retired-handoff"] == list(reports)
    assert None is reports["retired-handoff"].gain


def test_report_counts_outcomes_rates_and_touches(reports: dict[str, HandoffReport]) -> None:
    """Runs by outcome, open cases, exception rate, escalations and operator touches per run, exactly."""
    pos = reports["reservation-to-pos"]
    assert (5, 3, 1, 0, 1) == (pos.runs, pos.delivered, pos.rejected, pos.failed, pos.open_cases)
    assert (60.0, 1, 0.2) == (pos.exception_rate_pct, pos.escalations, pos.manual_touches_per_run)
    invoices = reports["lead-to-invoice"]
    assert (4, 3, 0, 1, 0) == (
        invoices.runs,
        invoices.delivered,
        invoices.rejected,
        invoices.failed,
        invoices.open_cases,
    )
    assert (50.0, 1, 0.5) == (invoices.exception_rate_pct, invoices.escalations, invoices.manual_touches_per_run)


def test_cycle_time_uses_delivered_runs_only(reports: dict[str, HandoffReport]) -> None:
    """Cycle time is received -> finished of delivered runs (rejected and failed runs are left out)."""
    assert Percentiles(count=3, p50=30.0, p95=50.0) == reports["reservation-to-pos"].cycle_time
    assert Percentiles(count=3, p50=40.0, p95=200.0) == reports["lead-to-invoice"].cycle_time


def test_decision_latency_is_per_deciding_group_and_skips_the_contracts_own_decisions(
    reports: dict[str, HandoffReport],
) -> None:
    """Case opened -> decided, grouped by the group that decided; an end-of-chain decision is no one's latency."""
    assert [("front-of-house", Percentiles(count=1, p50=20.0, p95=20.0))] == [
        (latency.group, latency.seconds) for latency in reports["reservation-to-pos"].decision_latency
    ]
    assert [
        ("finance", Percentiles(count=1, p50=4000.0, p95=4000.0)),
        ("sales-ops", Percentiles(count=1, p50=100.0, p95=100.0)),
    ] == [(latency.group, latency.seconds) for latency in reports["lead-to-invoice"].decision_latency]


def test_each_gain_is_met_not_met_or_without_data(reports: dict[str, HandoffReport]) -> None:
    """Cycle time p50 30s meets 60s; an exception rate of 50% misses 15%; no orders means no data."""
    verdicts = {
        name: (report.gain.actual, report.gain.target, report.gain.verdict)
        for name, report in reports.items()
        if report.gain is not None
    }
    assert {
        "reservation-to-pos": (30.0, 60.0, GainVerdict.MET),
        "lead-to-invoice": (50.0, 15.0, GainVerdict.NOT_MET),
        "order-to-kitchen": (None, 0.2, GainVerdict.NO_DATA),
    } == verdicts
    empty = reports["order-to-kitchen"]
    assert (0, None, None, Percentiles(count=0)) == (
        empty.runs,
        empty.exception_rate_pct,
        empty.manual_touches_per_run,
        empty.cycle_time,
    )


# -- split by contract version ----------------------------------------------------------------------------------------


def shipped_again(contract: HandoffContract, *, target: float) -> HandoffContract:
    """The contract as its next version, with another target for its gain."""
    assert contract.gain is not None
    return contract.model_copy(
        update={"version": contract.version + 1, "gain": contract.gain.model_copy(update={"target": target})}
    )


V1 = reservation_to_pos.CONTRACT.model_copy(update={"version": 1})
"""The example's reservation-to-pos as a first version (the runs below are stamped 1, 2 and 7)."""
V2 = shipped_again(V1, target=20.0)
"""reservation-to-pos shipped again as v2, with a cycle-time target of 20 seconds instead of 60."""


@pytest.fixture
def by_version(ledger: Engine) -> dict[str, HandoffReport]:
    """reservation-to-pos runs of v1 (two delivered, one escalated and rejected), v2 (one delivered, one waiting on a
    case) and v7, which the app does not have; lead-to-invoice runs of v1 only."""
    with Session(ledger) as session:
        add_run(session, "reservation-to-pos", "R1", "delivered", finished_after=10)
        r2 = add_run(session, "reservation-to-pos", "R2", "delivered", finished_after=30)
        add_case(session, r2, "C-R2", opened_after=1, owner="front-of-house")
        decide(session, "C-R2", after=21, group="front-of-house")
        r3 = add_run(session, "reservation-to-pos", "R3", "rejected", finished_after=3601)
        add_case(session, r3, "C-R3", opened_after=1, owner="front-of-house")
        escalate(session, "C-R3", r3, "front-of-house", "restaurant-managers")
        decide(session, "C-R3", after=3601, group=None, by_timeout=True)
        add_run(session, "reservation-to-pos", "R4", "delivered", finished_after=50, version=2)
        r5 = add_run(session, "reservation-to-pos", "R5", "awaiting-decision", version=2)
        add_case(session, r5, "C-R5", opened_after=2, owner="front-of-house")
        add_run(session, "reservation-to-pos", "R6", "delivered", finished_after=5, version=7)
        add_run(session, "lead-to-invoice", "D1", "delivered", finished_after=200)
        session.commit()
    contracts = [V2, *(c for c in restaurant.catalog.contracts if c.name != V1.name), V1]  # as every_version gives
    report = build_report(ledger, contracts, by_version=True, now=at(7200))
    return {handoff.handoff: handoff for handoff in report.handoffs}


def test_by_version_splits_every_figure_by_the_version_each_run_was_stamped_with(
    by_version: dict[str, HandoffReport],
) -> None:
    """Runs, outcomes, cases, escalations, touches, cycle time and latency per version, oldest version first."""
    pos = by_version["reservation-to-pos"]
    v1, v2, v7 = pos.versions
    assert [1, 2, 7] == [line.contract_version for line in pos.versions]
    assert [(3, 2, 1, 0), (2, 1, 0, 1), (1, 1, 0, 0)] == [
        (line.runs, line.delivered, line.rejected, line.open_cases) for line in (v1, v2, v7)
    ]
    assert [(66.6667, 1, 0.3333), (50.0, 0, 0.0), (0.0, 0, 0.0)] == [
        (line.exception_rate_pct, line.escalations, line.manual_touches_per_run) for line in (v1, v2, v7)
    ]
    assert [Percentiles(count=2, p50=10.0, p95=30.0), Percentiles(count=1, p50=50.0, p95=50.0)] == [
        v1.cycle_time,
        v2.cycle_time,
    ]
    assert ([("front-of-house", 20.0)], []) == (
        [(latency.group, latency.seconds.p50) for latency in v1.decision_latency],
        v2.decision_latency,
    )


def test_the_versions_add_up_to_the_handoffs_total(by_version: dict[str, HandoffReport]) -> None:
    """The total line is every version's runs together; each line names its handoff."""
    pos = by_version["reservation-to-pos"]
    assert (6, 4, 1, 1) == (pos.runs, pos.delivered, pos.open_cases, pos.escalations)
    assert pos.runs == sum(line.runs for line in pos.versions)
    assert pos.delivered == sum(line.delivered for line in pos.versions)
    assert {"reservation-to-pos"} == {line.handoff for line in pos.versions}
    assert [1] == [line.contract_version for line in by_version["lead-to-invoice"].versions]
    assert [] == by_version["order-to-kitchen"].versions  # no runs, no version lines


def test_each_version_is_held_to_its_own_gain_and_an_unknown_one_to_the_newest(
    by_version: dict[str, HandoffReport],
) -> None:
    """v1 meets its 60s target; v2 misses its 20s; v7, which the app lacks, is held to v2's; the total to v2's."""
    pos = by_version["reservation-to-pos"]
    verdicts = [(line.gain.actual, line.gain.target, line.gain.verdict) for line in (*pos.versions, pos) if line.gain]
    assert [
        (10.0, 60.0, GainVerdict.MET),
        (50.0, 20.0, GainVerdict.NOT_MET),
        (5.0, 20.0, GainVerdict.MET),
        (10.0, 20.0, GainVerdict.MET),
    ] == verdicts


def test_without_by_version_the_report_has_no_version_lines(ledger: Engine) -> None:
    """The split is asked for: by default each handoff has its total line only."""
    with Session(ledger) as session:
        add_run(session, "reservation-to-pos", "R1", "delivered", finished_after=10, version=2)
        session.commit()

    report = build_report(ledger, [V2, V1])

    assert [([], 1)] == [(line.versions, line.runs) for line in report.handoffs]
