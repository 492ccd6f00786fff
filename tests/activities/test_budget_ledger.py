"""The exception budget in the ledger, on SQLite and PostgreSQL: the rate over the window, one active hold a handoff
(also when runs trip it at once), who may resume or reject it, and the audit each hold leaves."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, MetaData, Table, inspect
from sqlalchemy.exc import IntegrityError

from handoff.activities.ledger.budget import (
    HoldRefused,
    UnknownHold,
    active_hold,
    active_holds,
    budget_figures,
    check_budget,
    decide_hold,
    held_runs,
    holds_of,
)
from handoff.activities.ledger.database import make_engine
from handoff.activities.ledger.migrate import alembic_config, upgrade
from handoff.activities.ledger.writes import record_stage_change
from handoff.schemas.activities import RunStamp, StageChange
from handoff.schemas.budget import BudgetCheck, HoldState, Verdict
from handoff.schemas.cases import ExceptionCase, Violation
from handoff.schemas.contract import DecisionKind, ExceptionBudget
from handoff.schemas.operators import Operator, Role
from handoff.schemas.runs import Stage

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
HANDOFF = "order-to-kitchen"
BUDGET = ExceptionBudget(max_case_rate=0.5, window=timedelta(hours=1), min_runs=4)
HOST = Operator(name="ana", groups=("kitchen",), created_at=T0)


def _run(ledger: Engine, name: str, *, at: datetime = T0, case: bool = False, handoff: str = HANDOFF) -> str:
    """A run received at `at`; with `case`, it opened one."""
    workflow_id = f"{handoff}/{name}"
    stamp = RunStamp(
        handoff=handoff,
        event="order.placed",
        dedupe_key=name,
        contract_version=1,
        contract_hash="abc123",
        payload={},
        received_at=at,
    )
    record_stage_change(ledger, StageChange(workflow_id=workflow_id, step=1, stage=Stage.VALIDATING, at=at, run=stamp))
    if case:
        opened = ExceptionCase(
            id=f"C-{name}",
            handoff=handoff,
            workflow_id=workflow_id,
            violations=[Violation(rule="r", kind="required", field="order.id", reason="no id")],
            payload={},
            owner_group="kitchen",
            opened_at=at,
            sla_deadline=at + timedelta(hours=4),
            allowed=[DecisionKind.REJECT],
        )
        change = StageChange(workflow_id=workflow_id, step=2, stage=Stage.AWAITING_DECISION, at=at, case=opened)
        record_stage_change(ledger, change)
    return workflow_id


def _check(
    workflow_id: str = "order-to-kitchen/asking", *, at: datetime = T0, hold_id: int | None = None
) -> BudgetCheck:
    return BudgetCheck(
        workflow_id=workflow_id, handoff=HANDOFF, budget=BUDGET, owner_group="kitchen", hold_id=hold_id, at=at
    )


def _burst(ledger: Engine, bad: int = 3, good: int = 1, *, at: datetime = T0) -> None:
    for index in range(bad):
        _run(ledger, f"bad-{index}-{at:%H%M%S}", at=at, case=True)
    for index in range(good):
        _run(ledger, f"good-{index}-{at:%H%M%S}", at=at)


def test_the_figures_count_the_handoffs_runs_in_the_window_and_those_with_a_case(ledger: Engine) -> None:
    """Runs before the window and runs of other handoffs do not count; a run with a case counts once."""
    _burst(ledger, bad=2, good=3)
    _run(ledger, "old", at=T0 - timedelta(hours=2), case=True)
    _run(ledger, "other", case=True, handoff="lead-to-invoice")
    figures = budget_figures(ledger, HANDOFF, BUDGET, at=T0 + timedelta(minutes=5))
    assert (5, 2, 3600.0) == (figures.runs, figures.runs_with_case, figures.window_seconds)
    assert 0.4 == figures.rate


def test_the_asking_run_counts_before_the_ledger_shows_it(ledger: Engine) -> None:
    """A run whose first stage change has not reached the ledger yet counts as a run without a case."""
    _burst(ledger, bad=2, good=1)
    figures = budget_figures(ledger, HANDOFF, BUDGET, at=T0, asking="order-to-kitchen/not-yet-recorded")
    assert (4, 2) == (figures.runs, figures.runs_with_case)


def test_a_rate_within_the_tolerance_lets_the_run_go(ledger: Engine) -> None:
    """Two runs with a case of four (the asking one included) is exactly half: within the tolerance."""
    _burst(ledger, bad=2, good=1)
    assert Verdict.GO == check_budget(ledger, _check()).verdict  # 2 of 4 is not more than half
    assert active_hold(ledger, HANDOFF) is None


def test_below_min_runs_goes_whatever_the_rate(ledger: Engine) -> None:
    """Two runs, both with a case, and the asking one: three runs, fewer than min_runs."""
    _burst(ledger, bad=2, good=0)
    assert Verdict.GO == check_budget(ledger, _check()).verdict


def test_past_the_tolerance_a_hold_starts_and_later_runs_join_it(ledger: Engine) -> None:
    """Three of four runs with a case holds the handoff, with its figures; the next run is held on the same hold."""
    _burst(ledger, bad=3, good=1)
    first = check_budget(ledger, _check(_run(ledger, "g1")))
    second = check_budget(ledger, _check(_run(ledger, "g2"), at=T0 + timedelta(seconds=1)))
    assert Verdict.HELD == first.verdict == second.verdict
    assert first.hold is not None and second.hold is not None and first.hold.id == second.hold.id
    assert (5, 3, 0.6, "kitchen", HoldState.HELD) == (
        first.hold.runs,
        first.hold.runs_with_case,
        first.hold.case_rate,
        first.hold.owner_group,
        first.hold.state,
    )
    assert [first.hold.id] == [hold.id for hold in active_holds(ledger)]


def test_runs_tripping_the_budget_at_once_start_one_hold(ledger: Engine) -> None:
    """Eight runs checking at the same time (each sees six of seven runs with a case): one hold, all held on it."""
    _burst(ledger, bad=6, good=0)
    asking = [f"{HANDOFF}/at-once-{index}" for index in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda workflow_id: check_budget(ledger, _check(workflow_id)), asking))
    assert {Verdict.HELD} == {answer.verdict for answer in answers}
    assert 1 == len({answer.hold.id for answer in answers if answer.hold is not None})
    assert 1 == len(holds_of(ledger, HANDOFF))


def test_a_resume_lets_its_runs_go_and_starts_the_count_afresh(ledger: Engine) -> None:
    """After a resume, the held run's hold says go, and the runs that tripped it count no more."""
    _burst(ledger, bad=3, good=1)
    held = check_budget(ledger, _check())
    assert held.hold is not None
    resumed = decide_hold(ledger, HANDOFF, HoldState.RESUMED, HOST, "fixed at the source", at=T0 + timedelta(minutes=1))
    assert (HoldState.RESUMED, "ana", "fixed at the source") == (resumed.state, resumed.decided_by, resumed.reason)
    assert Verdict.GO == check_budget(ledger, _check(hold_id=held.hold.id)).verdict
    assert Verdict.GO == check_budget(ledger, _check("order-to-kitchen/later", at=T0 + timedelta(minutes=2))).verdict
    _burst(ledger, bad=3, good=1, at=T0 + timedelta(minutes=3))
    again = check_budget(ledger, _check("order-to-kitchen/after", at=T0 + timedelta(minutes=4)))
    assert Verdict.HELD == again.verdict and again.hold is not None and again.hold.id != held.hold.id
    assert [HoldState.RESUMED, HoldState.HELD] == [hold.state for hold in holds_of(ledger, HANDOFF)]


def test_a_rejection_answers_rejected_to_its_runs(ledger: Engine) -> None:
    """A rejected hold's runs hear rejected; the hold keeps who and why."""
    _burst(ledger, bad=3, good=1)
    held = check_budget(ledger, _check())
    assert held.hold is not None
    admin = Operator(name="root", groups=(), created_at=T0, role=Role.ADMINISTRATOR)
    decide_hold(ledger, HANDOFF, HoldState.REJECTED, admin, "garbage feed", at=T0 + timedelta(minutes=1))
    answer = check_budget(ledger, _check(hold_id=held.hold.id))
    assert Verdict.REJECTED == answer.verdict
    assert answer.hold is not None and ("root", "garbage feed") == (answer.hold.decided_by, answer.hold.reason)
    assert answer.hold.decided_at == T0 + timedelta(minutes=1)


def test_only_the_owner_group_or_an_administrator_decides_a_hold(ledger: Engine) -> None:
    """An operator of another group, or a viewer, is refused (`not-allowed`); the hold stays active."""
    _burst(ledger, bad=3, good=1)
    check_budget(ledger, _check())
    outsiders = [
        Operator(name="bo", groups=("bar",), created_at=T0),
        Operator(name="vi", groups=("kitchen",), created_at=T0, role=Role.VIEWER),
    ]
    for outsider in outsiders:
        with pytest.raises(HoldRefused) as refused:
            decide_hold(ledger, HANDOFF, HoldState.RESUMED, outsider, "let it go", at=T0)
        assert "not-allowed" == refused.value.kind
        assert "kitchen" in refused.value.message
    assert active_hold(ledger, HANDOFF) is not None


def test_deciding_without_an_active_hold_is_refused(ledger: Engine) -> None:
    """Nothing held: `no-active-hold`, naming the handoff; a second resume of the same hold too."""
    with pytest.raises(HoldRefused) as refused:
        decide_hold(ledger, HANDOFF, HoldState.RESUMED, HOST, "why not", at=T0)
    assert "no-active-hold" == refused.value.kind and HANDOFF in refused.value.message
    _burst(ledger, bad=3, good=1)
    check_budget(ledger, _check())
    decide_hold(ledger, HANDOFF, HoldState.RESUMED, HOST, "once", at=T0)
    with pytest.raises(HoldRefused):
        decide_hold(ledger, HANDOFF, HoldState.REJECTED, HOST, "twice", at=T0)


def test_a_hold_is_decided_only_by_resuming_or_rejecting(ledger: Engine) -> None:
    """Asking to 'decide' a hold into held is a programming error."""
    with pytest.raises(ValueError, match="resuming or rejecting"):
        decide_hold(ledger, HANDOFF, HoldState.HELD, HOST, "no", at=T0)


def test_a_run_waiting_on_a_hold_the_ledger_lacks_is_an_error(ledger: Engine) -> None:
    """UnknownHold names the hold and the handoff."""
    with pytest.raises(UnknownHold, match=f"hold 42 of '{HANDOFF}'"):
        check_budget(ledger, _check(hold_id=42))


def test_held_runs_are_those_the_ledger_shows_in_stage_held(ledger: Engine) -> None:
    """Only the handoff's runs in stage held are listed: the ones a decision must wake."""
    waiting = _run(ledger, "waiting")
    record_stage_change(ledger, StageChange(workflow_id=waiting, step=2, stage=Stage.HELD, at=T0))
    _run(ledger, "validating")
    other = _run(ledger, "elsewhere", handoff="lead-to-invoice")
    record_stage_change(ledger, StageChange(workflow_id=other, step=2, stage=Stage.HELD, at=T0))
    assert [waiting] == held_runs(ledger, HANDOFF)


def test_0007_adds_the_holds_table_and_going_back_drops_it(ledger_url: str) -> None:
    """From 0006, 0007 adds `holds` (one active hold a handoff, by its unique key); its downgrade removes only it."""
    engine = make_engine(ledger_url)
    try:
        assert "0006" == upgrade(engine, "0006")
        before = set(inspect(engine).get_table_names())
        assert "0007" == upgrade(engine, "0007")
        assert {"holds"} == set(inspect(engine).get_table_names()) - before
        row = {"handoff": HANDOFF, "active_handoff": HANDOFF, "state": "held", "held_at": T0, "runs": 5}
        row |= {"runs_with_case": 4, "case_rate": 0.8, "window_seconds": 3600.0}
        holds = Table("holds", MetaData(), autoload_with=engine)
        with engine.begin() as connection:
            connection.execute(holds.insert().values(**row))
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(holds.insert().values(**row))
        with engine.connect() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0006")
            assert before == set(inspect(connection).get_table_names())
            connection.commit()
    finally:
        engine.dispose()
