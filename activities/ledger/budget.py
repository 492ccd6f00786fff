"""The exception budget in the ledger: a handoff's case rate over its window, its holds, and their decisions.

The rate counts the handoff's runs received in the budget's window and after its last resumed or rejected hold (so a
decided hold starts the count afresh: the runs that tripped it do not trip the next one); a run counts as having
opened a case when it has any. A hold is created when at least `min_runs` runs are counted and more than
`max_case_rate` of them opened a case. One hold a handoff is active at a time, on SQLite and PostgreSQL alike, however
many runs trip the budget at once: `active_handoff` is unique while the hold is active (a run that loses the race
joins the winner's hold). An operator of the owner group, or an administrator, resumes or rejects the active hold;
the row keeps who, when and why, so the table is the audit of every hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from handoff.activities.ledger.database import session_scope
from handoff.activities.ledger.reads import utc
from handoff.activities.ledger.tables import CaseRow, HoldRow, RunRow
from handoff.schemas.budget import BudgetAnswer, BudgetCheck, BudgetFigures, Hold, HoldState, Verdict
from handoff.schemas.contract import ExceptionBudget
from handoff.schemas.operators import Operator, Role
from handoff.schemas.runs import Stage

log = structlog.get_logger(__name__)

VERDICT_OF = {HoldState.HELD: Verdict.HELD, HoldState.RESUMED: Verdict.GO, HoldState.REJECTED: Verdict.REJECTED}
"""What a run waiting on a hold does, by the hold's state."""


class HoldRefused(Exception):
    """A resume or rejection that cannot be done: `kind` is `no-active-hold` or `not-allowed`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class UnknownHold(Exception):
    """A run waits on a hold the ledger does not have: a ledger restored from before it, or a forged start."""


def budget_figures(
    engine: Engine, handoff: str, budget: ExceptionBudget, *, at: datetime, asking: str | None = None
) -> BudgetFigures:
    """The handoff's runs and runs with a case over the window ending `at`, since its last decided hold.

    `asking`: the run that asks counts even before the ledger shows it (its first stage change may still ride along
    with a later activity), as a run without a case: it reached delivery.
    """
    with Session(engine) as session:
        figures = _figures(session, handoff, budget.window, at)
        if asking is not None and session.get(RunRow, asking) is None:
            figures = figures.model_copy(update={"runs": figures.runs + 1})
        return figures


def check_budget(engine: Engine, check: BudgetCheck) -> BudgetAnswer:
    """May this run deliver? Go; held (on the active hold, or on one its figures just started); or rejected.

    With `hold_id` (a run asking again) only that hold's state answers: a resumed hold lets its runs go even if the
    rate is still high, and the budget is not counted again for them.
    """
    bound = log.bind(handoff=check.handoff, workflow_id=check.workflow_id)
    if check.hold_id is not None:
        hold = hold_by_id(engine, check.hold_id)
        if hold is None:
            raise UnknownHold(f"hold {check.hold_id} of {check.handoff!r} is not in the ledger")
        return BudgetAnswer(verdict=VERDICT_OF[hold.state], hold=hold)
    active = active_hold(engine, check.handoff)
    if active is not None:
        return BudgetAnswer(verdict=Verdict.HELD, hold=active)
    figures = budget_figures(engine, check.handoff, check.budget, at=check.at, asking=check.workflow_id)
    if figures.runs < check.budget.min_runs or figures.rate <= check.budget.max_case_rate:
        return BudgetAnswer(verdict=Verdict.GO)
    hold = _create_hold(engine, check, figures)
    if hold is None:  # another run's hold was started and decided meanwhile: the count starts afresh
        return check_budget(engine, check)
    bound.warning(
        "budget.held", hold_id=hold.id, runs=figures.runs, runs_with_case=figures.runs_with_case, rate=figures.rate
    )
    return BudgetAnswer(verdict=Verdict.HELD, hold=hold)


def active_hold(engine: Engine, handoff: str) -> Hold | None:
    """The handoff's hold that waits for an operator, if any."""
    with Session(engine) as session:
        row = session.exec(select(HoldRow).where(HoldRow.active_handoff == handoff)).first()
        return _hold(session, row) if row is not None else None


def hold_by_id(engine: Engine, hold_id: int) -> Hold | None:
    with Session(engine) as session:
        row = session.get(HoldRow, hold_id)
        return _hold(session, row) if row is not None else None


def active_holds(engine: Engine) -> list[Hold]:
    """Every handoff held now, oldest hold first, with how many runs wait on each."""
    with Session(engine) as session:
        rows = session.exec(
            select(HoldRow).where(col(HoldRow.active_handoff).is_not(None)).order_by(col(HoldRow.held_at))
        ).all()
        return [_hold(session, row) for row in rows]


def holds_of(engine: Engine, handoff: str) -> list[Hold]:
    """Every hold of the handoff, oldest first: the audit of its holds, resumes and rejections."""
    with Session(engine) as session:
        rows = session.exec(select(HoldRow).where(HoldRow.handoff == handoff).order_by(col(HoldRow.id))).all()
        return [_hold(session, row) for row in rows]


def held_runs(engine: Engine, handoff: str) -> list[str]:
    """The workflow ids of the handoff's runs the ledger shows in stage held: the runs to tell of a decision."""
    with Session(engine) as session:
        return list(
            session.exec(
                select(RunRow.workflow_id).where(RunRow.handoff == handoff, RunRow.stage == Stage.HELD.value)
            ).all()
        )


def may_decide_hold(operator: Operator, hold: Hold) -> bool:
    """An administrator, or an operator of the group that owns the handoff's cases, may resume or reject it."""
    if operator.role is Role.ADMINISTRATOR:
        return True
    return operator.role is Role.OPERATOR and hold.owner_group is not None and hold.owner_group in operator.groups


def decide_hold(
    engine: Engine, handoff: str, state: HoldState, operator: Operator, reason: str, *, at: datetime
) -> Hold:
    """Resume (`RESUMED`) or reject (`REJECTED`) the handoff's active hold as `operator`, with `reason`; the row keeps
    who, when and why. HoldRefused when there is no active hold, or the operator may not decide it."""
    if state is HoldState.HELD:
        raise ValueError("a hold is decided by resuming or rejecting it")
    with session_scope(engine) as session:
        row = session.exec(select(HoldRow).where(HoldRow.active_handoff == handoff).with_for_update()).first()
        if row is None:
            raise HoldRefused("no-active-hold", f"{handoff!r} is not held: there is nothing to resume or reject.")
        hold = _hold(session, row)
        if not may_decide_hold(operator, hold):
            group = hold.owner_group or "(none declared)"
            raise HoldRefused(
                "not-allowed",
                f"{operator.name} may not decide the hold of {handoff!r}: only an operator of its owner group "
                f"{group} or an administrator may.",
            )
        row.state = state.value
        row.active_handoff = None
        row.decided_by = operator.name
        row.decided_at = at
        row.reason = reason
        session.add(row)
        session.flush()
        decided = _hold(session, row)
    log.info("budget.hold_decided", handoff=handoff, hold_id=decided.id, state=state.value, operator=operator.name)
    return decided


# -- inside ------------------------------------------------------------------------------------------------------------


def _figures(session: Session, handoff: str, window: timedelta, at: datetime) -> BudgetFigures:
    since = at - window
    last_decided = session.exec(
        select(func.max(HoldRow.decided_at)).where(HoldRow.handoff == handoff, col(HoldRow.decided_at).is_not(None))
    ).one()
    counted = select(RunRow.workflow_id).where(RunRow.handoff == handoff, col(RunRow.received_at) >= since)
    if last_decided is not None:
        counted = counted.where(col(RunRow.received_at) > last_decided)
    runs = session.exec(select(func.count()).select_from(counted.subquery())).one()
    with_case = session.exec(
        select(func.count(func.distinct(CaseRow.workflow_id))).where(
            col(CaseRow.workflow_id).in_(counted.scalar_subquery())
        )
    ).one()
    return BudgetFigures(runs=runs, runs_with_case=with_case, window_seconds=window.total_seconds())


def _create_hold(engine: Engine, check: BudgetCheck, figures: BudgetFigures) -> Hold | None:
    """Start the handoff's hold; when another run started one meanwhile (the unique key), that one is the hold, and
    None when that one was decided already."""
    try:
        with session_scope(engine) as session:
            row = HoldRow(
                handoff=check.handoff,
                active_handoff=check.handoff,
                state=HoldState.HELD.value,
                held_at=check.at,
                runs=figures.runs,
                runs_with_case=figures.runs_with_case,
                case_rate=round(figures.rate, 4),
                window_seconds=figures.window_seconds,
                owner_group=check.owner_group,
            )
            session.add(row)
            session.flush()
            return _hold(session, row)
    except IntegrityError:
        return active_hold(engine, check.handoff)


def _hold(session: Session, row: HoldRow) -> Hold:
    assert row.id is not None
    waiting = 0
    if row.state == HoldState.HELD.value:
        waiting = session.exec(
            select(func.count())
            .select_from(RunRow)
            .where(RunRow.handoff == row.handoff, RunRow.stage == Stage.HELD.value)
        ).one()
    return Hold(
        id=row.id,
        handoff=row.handoff,
        state=HoldState(row.state),
        held_at=utc(row.held_at),
        runs=row.runs,
        runs_with_case=row.runs_with_case,
        case_rate=row.case_rate,
        window_seconds=row.window_seconds,
        owner_group=row.owner_group,
        decided_by=row.decided_by,
        decided_at=utc(row.decided_at) if row.decided_at is not None else None,
        reason=row.reason,
        held_runs=waiting,
    )
