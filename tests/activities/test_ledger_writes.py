"""The ledger's idempotent writes, on real databases (SQLite, and PostgreSQL when configured): a retry, a late
step or a racing worker never duplicates a row nor moves a run backwards."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, SQLModel
from structlog.testing import CapturingLogger

from handoff.activities.ledger import writes
from handoff.activities.ledger.tables import (
    CaseRow,
    DecisionRow,
    EscalationRow,
    RefusedDecisionRow,
    RunRow,
    ViolationRow,
)
from handoff.activities.ledger.writes import (
    LedgerError,
    record_decision,
    record_delivery,
    record_escalation,
    record_refusal,
    record_stage_change,
)
from handoff.schemas.activities import EscalationRecord, RefusalRecord, RunStamp, StageChange
from handoff.schemas.cases import (
    CaseStatus,
    DecisionRecord,
    DecisionRequest,
    Escalation,
    ExceptionCase,
    RefusalKind,
    RefusedDecision,
    Violation,
)
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import Delivery, Stage

T0 = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
WORKFLOW_ID = "reservation-to-pos/R-7001"
CASE_ID = f"{WORKFLOW_ID}/case-1"
VIOLATIONS = [
    Violation(
        rule="reservation.party_size <= 12", kind="max", field="reservation.party_size", value=14, reason="too big"
    ),
    Violation(rule="guest.phone required", kind="required", field="guest.phone", value=None, reason="missing"),
    Violation(rule="table exists", kind="lookup", field="reservation.table_number", value="T99", reason="no table"),
]


def stamp() -> RunStamp:
    return RunStamp(
        handoff="reservation-to-pos",
        event="reservation.confirmed",
        dedupe_key="R-7001",
        contract_version=3,
        contract_hash="c0ffee",
        payload={"reservation": {"id": "R-7001", "party_size": 14}, "guest": {"name": "Ada"}},
        received_at=T0,
    )


def change(step: int, stage: Stage, **fields: Any) -> StageChange:
    return StageChange(workflow_id=WORKFLOW_ID, step=step, stage=stage, at=T0 + timedelta(minutes=step), **fields)


def open_case(violations: list[Violation] | None = None) -> ExceptionCase:
    return ExceptionCase(
        id=CASE_ID,
        handoff="reservation-to-pos",
        workflow_id=WORKFLOW_ID,
        violations=VIOLATIONS if violations is None else violations,
        payload={"reservation": {"party_size": 14}},
        owner_group="front-desk",
        opened_at=T0 + timedelta(minutes=2),
        sla_deadline=T0 + timedelta(minutes=32),
        allowed=[DecisionKind.APPROVE, DecisionKind.REJECT],
    )


def decision(reason: str = "checked with the guest") -> DecisionRecord:
    return DecisionRecord(
        case_id=CASE_ID,
        decision=DecisionKind.APPROVE,
        operator="maria",
        group="front-desk",
        reason=reason,
        decided_at=T0 + timedelta(minutes=10),
    )


def decided_case(record: DecisionRecord) -> ExceptionCase:
    return open_case().model_copy(update={"status": CaseStatus.DECIDED, "decision": record})


def opened(engine: Engine) -> None:
    """A run received (step 1) and waiting on its case (step 2)."""
    record_stage_change(engine, change(1, Stage.VALIDATING, run=stamp()))
    record_stage_change(engine, change(2, Stage.AWAITING_DECISION, case=open_case()))


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ledger table, in primary-key order, times in UTC (SQLite returns them naive)."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            rows = connection.execute(select(table).order_by(*table.primary_key.columns)).all()
            tables[table.name] = [tuple(_utc(value) for value in row) for row in rows]
    return tables


def counts(engine: Engine) -> dict[str, int]:
    return {name: len(rows) for name, rows in snapshot(engine).items()}


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def run_row(engine: Engine) -> RunRow:
    with Session(engine) as session:
        row = session.get(RunRow, WORKFLOW_ID)
    assert row is not None
    return row


def test_first_record_of_a_run_needs_its_stamp(ledger: Engine) -> None:
    """A run's first change without a RunStamp is a LedgerError and writes nothing."""
    with pytest.raises(LedgerError, match="carries no stamp"):
        record_stage_change(ledger, change(1, Stage.VALIDATING))
    assert 0 == sum(counts(ledger).values())


def test_first_record_keeps_the_stamp(ledger: Engine) -> None:
    """The first change writes the run with its contract stamp, payload and stage."""
    assert record_stage_change(ledger, change(1, Stage.VALIDATING, run=stamp()))
    row = run_row(ledger)
    expected = (
        "reservation-to-pos",
        "reservation.confirmed",
        "R-7001",
        3,
        "c0ffee",
        "validating",
        1,
        stamp().payload,
        T0,
        T0 + timedelta(minutes=1),
        None,
        False,
        None,
    )
    actual = (
        row.handoff,
        row.event,
        row.dedupe_key,
        row.contract_version,
        row.contract_hash,
        row.stage,
        row.last_step,
        row.payload,
        _utc(row.received_at),
        _utc(row.updated_at),
        row.finished_at,
        row.override,
        row.failure,
    )
    assert expected == actual


def test_retried_change_changes_nothing(ledger: Engine) -> None:
    """A change applied again (an activity retry) returns False and leaves every row and value as it was."""
    opened(ledger)
    before = snapshot(ledger)
    assert False is record_stage_change(ledger, change(2, Stage.AWAITING_DECISION, case=open_case()))
    assert False is record_stage_change(ledger, change(1, Stage.VALIDATING, run=stamp()))
    assert before == snapshot(ledger)


def test_older_step_does_not_move_the_run_back(ledger: Engine) -> None:
    """A late retry of an older step, after a newer one, leaves the run at the newer stage."""
    record = decision()
    opened(ledger)
    record_stage_change(ledger, change(3, Stage.DELIVERING, case=decided_case(record), decision=record, override=True))
    before = snapshot(ledger)

    assert False is record_stage_change(ledger, change(2, Stage.AWAITING_DECISION, case=open_case()))
    row = run_row(ledger)
    assert ("delivering", 3, True) == (row.stage, row.last_step, row.override)
    assert before == snapshot(ledger)


def test_final_stage_finishes_the_run_and_keeps_the_failure(ledger: Engine) -> None:
    """A final stage sets finished_at; a failure is kept."""
    record_stage_change(ledger, change(1, Stage.VALIDATING, run=stamp()))
    record_stage_change(ledger, change(2, Stage.FAILED, failure="pos is down"))
    row = run_row(ledger)
    assert ("failed", T0 + timedelta(minutes=2), "pos is down") == (row.stage, _utc(row.finished_at), row.failure)


def test_violations_are_written_once_in_order(ledger: Engine) -> None:
    """A case's violations are written once, in the contract's order, however often the case is recorded again."""
    record = decision()
    opened(ledger)
    record_stage_change(ledger, change(2, Stage.AWAITING_DECISION, case=open_case()))
    # A later record of the same case (now decided) carries the violations again: they are not written twice.
    record_stage_change(ledger, change(3, Stage.DELIVERING, case=decided_case(record), decision=record))
    with ledger.connect() as connection:
        rows = connection.execute(select(ViolationRow).order_by(ViolationRow.position)).all()
    expected = [(CASE_ID, i, v.rule, v.kind, v.field, v.value, v.reason) for i, v in enumerate(VIOLATIONS)]
    assert expected == [(r.case_id, r.position, r.rule, r.kind, r.field, r.value, r.reason) for r in rows]


def test_case_is_updated_when_decided(ledger: Engine) -> None:
    """The case row follows the case: decided, with the decision and its time."""
    record = decision()
    opened(ledger)
    record_stage_change(ledger, change(3, Stage.DELIVERING, case=decided_case(record), decision=record))
    with ledger.connect() as connection:
        case = connection.execute(select(CaseRow)).one()
    assert ("decided", "approve", record.decided_at) == (case.status, case.decision, _utc(case.decided_at))


def logged(monkeypatch: pytest.MonkeyPatch) -> CapturingLogger:
    """The writes' log, kept for the test (structlog caches its loggers: `capture_logs` misses a cached one)."""
    logger = CapturingLogger()
    monkeypatch.setattr(writes, "log", logger)
    return logger


def warnings(logger: CapturingLogger) -> list[str]:
    return [call.args[0] for call in logger.calls if call.method_name == "warning"]


def _decisions(ledger: Engine) -> list[tuple[Any, ...]]:
    with ledger.connect() as connection:
        rows = connection.execute(select(DecisionRow)).all()
    return [
        (r.case_id, r.workflow_id, r.handoff, r.decision, r.operator, r.group, r.reason, r.by_timeout) for r in rows
    ]


def test_decision_is_written_once(ledger: Engine) -> None:
    """A case's decision is written once: its change retried, or its case carried again with it, adds no row."""
    first = decision()
    opened(ledger)
    record_stage_change(ledger, change(3, Stage.DELIVERING, case=decided_case(first), decision=first))
    assert False is record_stage_change(ledger, change(3, Stage.DELIVERING, case=decided_case(first), decision=first))
    record_stage_change(ledger, change(4, Stage.DELIVERED, case=decided_case(first), decision=first))
    expected = [(CASE_ID, WORKFLOW_ID, "reservation-to-pos", "approve", "maria", "front-desk", first.reason, False)]
    assert expected == _decisions(ledger)


def test_a_decision_the_run_did_not_take_is_replaced_by_the_one_it_took(
    ledger: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run decides a case once. A decision's verification that recorded it and then failed leaves a decision the
    run refused (and a step it never uses again): the decision the run takes, in a later step, replaces it."""
    unconfirmed = decision()
    opened(ledger)
    record_stage_change(ledger, change(3, Stage.DELIVERING, case=decided_case(unconfirmed), decision=unconfirmed))
    taken = decision("the guest cancelled").model_copy(update={"decision": DecisionKind.REJECT, "operator": "tomas"})
    logs = logged(monkeypatch)
    assert True is record_stage_change(ledger, change(5, Stage.REJECTED, case=decided_case(taken), decision=taken))

    expected = [(CASE_ID, WORKFLOW_ID, "reservation-to-pos", "reject", "tomas", "front-desk", taken.reason, False)]
    assert expected == _decisions(ledger)
    with Session(ledger) as session:
        case = session.get(CaseRow, CASE_ID)
        run = session.get(RunRow, WORKFLOW_ID)
    assert case is not None and run is not None
    assert ("reject", "rejected", 5) == (case.decision, run.stage, run.last_step)
    assert ["ledger.decision_replaced"] == warnings(logs)


def escalation(to_group: str = "duty-manager", minutes: int = 32) -> EscalationRecord:
    return EscalationRecord(
        workflow_id=WORKFLOW_ID,
        case_id=CASE_ID,
        escalation=Escalation(from_group="front-desk", to_group=to_group, at=T0 + timedelta(minutes=minutes)),
        sla_deadline=T0 + timedelta(minutes=minutes + 30),
    )


def test_escalation_moves_the_case_once(ledger: Engine) -> None:
    """An escalation hands the case to the next group with a new deadline; recording it again changes nothing."""
    opened(ledger)
    assert True is record_escalation(ledger, escalation())
    before = snapshot(ledger)
    assert False is record_escalation(ledger, escalation())
    assert before == snapshot(ledger)
    with ledger.connect() as connection:
        case = connection.execute(select(CaseRow)).one()
        escalations = connection.execute(select(EscalationRow)).all()
    assert ("duty-manager", T0 + timedelta(minutes=62)) == (case.owner_group, _utc(case.sla_deadline))
    assert [("front-desk", "duty-manager")] == [(e.from_group, e.to_group) for e in escalations]


def test_escalation_of_an_unknown_case_is_refused(ledger: Engine) -> None:
    """An escalation for a case the ledger never saw is a LedgerError."""
    with pytest.raises(LedgerError, match="not in the ledger"):
        record_escalation(ledger, escalation())


def refusal(sequence: int) -> RefusalRecord:
    request = DecisionRequest(case_id="no-such-case", decision=DecisionKind.APPROVE, operator="eve", reason="why not")
    return RefusalRecord(
        workflow_id=WORKFLOW_ID,
        handoff="reservation-to-pos",
        sequence=sequence,
        refused=RefusedDecision(
            request=request, refusal="no such case", kind=RefusalKind.UNKNOWN_CASE, at=T0 + timedelta(minutes=sequence)
        ),
    )


def test_refusal_is_recorded_once_per_sequence(ledger: Engine) -> None:
    """A refusal is keyed by (workflow_id, sequence): a repeat is ignored, the next sequence is a new row."""
    assert True is record_refusal(ledger, refusal(0))
    assert False is record_refusal(ledger, refusal(0))
    assert True is record_refusal(ledger, refusal(1))
    with ledger.connect() as connection:
        rows = connection.execute(select(RefusedDecisionRow).order_by(RefusedDecisionRow.sequence)).all()
    expected = [(WORKFLOW_ID, n, "no-such-case", "approve", "eve", "no such case") for n in (0, 1)]
    assert expected == [(r.workflow_id, r.sequence, r.case_id, r.decision, r.operator, r.refusal) for r in rows]


@pytest.mark.parametrize(
    ("unconfirmed_kind", "stage"), [(DecisionKind.APPROVE, Stage.DELIVERING), (DecisionKind.REJECT, Stage.REJECTED)]
)
def test_a_refusal_reopening_the_case_undoes_an_unconfirmed_decision(
    ledger: Engine, unconfirmed_kind: DecisionKind, stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A verification wrote a decision at step 3 and never confirmed it; the run refused the decision. Its refusal
    puts the run's stage and open case back at step 4: no decision, no finish, the override as the run has it."""
    opened(ledger)
    unconfirmed = decision().model_copy(update={"decision": unconfirmed_kind})
    override = unconfirmed_kind is DecisionKind.APPROVE
    record_stage_change(
        ledger, change(3, stage, case=decided_case(unconfirmed), decision=unconfirmed, override=override)
    )
    reopened = change(4, Stage.AWAITING_DECISION, case=open_case())
    logs = logged(monkeypatch)
    assert True is record_refusal(ledger, refusal(1).model_copy(update={"reopened": reopened}))
    assert False is record_refusal(ledger, refusal(1).model_copy(update={"reopened": reopened}))  # a retry

    with Session(ledger) as session:
        run = session.get(RunRow, WORKFLOW_ID)
        case = session.get(CaseRow, CASE_ID)
    assert run is not None and case is not None
    assert ("awaiting-decision", 4, False, None) == (run.stage, run.last_step, run.override, run.finished_at)
    assert ("open", None, None) == (case.status, case.decision, case.decided_at)
    assert [] == _decisions(ledger)
    assert ["ledger.decision_undone"] == warnings(logs)
    taken = decision("the guest cancelled")  # decided again, later: written at the next step as any decision
    assert True is record_stage_change(ledger, change(5, Stage.DELIVERING, case=decided_case(taken), decision=taken))
    assert "the guest cancelled" == _decisions(ledger)[0][6]


@pytest.mark.parametrize(
    ("unconfirmed_kind", "unconfirmed_stage", "taken_kind", "taken_stage"),
    [
        (DecisionKind.APPROVE, Stage.DELIVERING, DecisionKind.REJECT, Stage.REJECTED),
        (DecisionKind.REJECT, Stage.REJECTED, DecisionKind.CORRECT, Stage.VALIDATING),
    ],
)
def test_a_restating_change_sets_the_override_and_the_finish_outright(
    ledger: Engine,
    unconfirmed_kind: DecisionKind,
    unconfirmed_stage: Stage,
    taken_kind: DecisionKind,
    taken_stage: Stage,
) -> None:
    """After a step a verification may have written unconfirmed, the run's next change restates its override and its
    finish: an unconfirmed approval's override, or an unconfirmed rejection's finish, does not outlive it."""
    opened(ledger)
    unconfirmed = decision().model_copy(update={"decision": unconfirmed_kind})
    override = unconfirmed_kind is DecisionKind.APPROVE
    record_stage_change(
        ledger, change(3, unconfirmed_stage, case=decided_case(unconfirmed), decision=unconfirmed, override=override)
    )
    taken = decision().model_copy(update={"decision": taken_kind, "operator": "tomas"})
    record_stage_change(ledger, change(4, taken_stage, case=decided_case(taken), decision=taken, restates=True))

    with Session(ledger) as session:
        run = session.get(RunRow, WORKFLOW_ID)
    assert run is not None
    assert (taken_stage.value, False) == (run.stage, run.override)
    assert (run.finished_at is not None) is taken_stage.is_final
    assert taken_kind.value == _decisions(ledger)[0][3]


def test_a_reopening_older_than_the_ledger_changes_nothing(ledger: Engine) -> None:
    """A refusal recorded late, after the run's next decision was written, leaves that decision alone."""
    opened(ledger)
    taken = decision()
    record_stage_change(ledger, change(5, Stage.DELIVERING, case=decided_case(taken), decision=taken, override=True))
    before = snapshot(ledger)
    record_refusal(
        ledger, refusal(1).model_copy(update={"reopened": change(4, Stage.AWAITING_DECISION, case=open_case())})
    )
    after = snapshot(ledger)
    assert before["runs"] == after["runs"] and before["cases"] == after["cases"]
    assert before["decisions"] == after["decisions"]


def test_a_verification_confirms_only_the_decision_the_ledger_holds_at_its_step(ledger: Engine) -> None:
    """`record_decision` is True for its own write and for a retry of it, False when the step holds another decision
    (a workflow task retried after a crash, taking another decision first): the run then writes its own."""
    opened(ledger)
    first = decision()
    assert True is record_decision(ledger, change(3, Stage.DELIVERING, case=decided_case(first), decision=first))
    again = first.model_copy(update={"decided_at": first.decided_at + timedelta(seconds=2)})
    assert True is record_decision(ledger, change(3, Stage.DELIVERING, case=decided_case(again), decision=again))
    other = first.model_copy(update={"decision": DecisionKind.REJECT, "operator": "tomas"})
    assert False is record_decision(ledger, change(3, Stage.REJECTED, case=decided_case(other), decision=other))


def test_record_delivery_returns_the_first_record(ledger: Engine) -> None:
    """A delivery recorded again returns the first record (timezone-aware), and the ledger keeps one row."""
    first = Delivery(system="pos", record_key=WORKFLOW_ID, fields={"covers": 4}, delivered_at=T0)
    assert first == record_delivery(ledger, WORKFLOW_ID, "reservation-to-pos", first)
    repeat = Delivery(system="pos", record_key=WORKFLOW_ID, fields={"covers": 5}, delivered_at=T0 + timedelta(hours=1))
    assert first == record_delivery(ledger, WORKFLOW_ID, "reservation-to-pos", repeat)
    assert 1 == counts(ledger)["deliveries"]


def race(writes: int, write: Callable[[], bool]) -> list[bool]:
    """Run `write` from `writes` threads released at the same moment; their answers."""
    start = threading.Barrier(writes)

    def at_once() -> bool:
        start.wait()
        return write()

    with ThreadPoolExecutor(max_workers=writes) as pool:
        futures = [pool.submit(at_once) for _ in range(writes)]
        return [future.result() for future in futures]


@pytest.mark.parametrize("repeat", range(3))
def test_concurrent_first_change_ends_with_one_set_of_rows(ledger: Engine, repeat: int) -> None:
    """The same first change from racing threads is applied once: one run, one case, its violations once."""
    first = change(1, Stage.AWAITING_DECISION, run=stamp(), case=open_case())

    answers = race(8, lambda: record_stage_change(ledger, first))

    assert 1 == answers.count(True)
    assert {"runs": 1, "cases": 1, "violations": 3} == {k: v for k, v in counts(ledger).items() if v}


@pytest.mark.parametrize("repeat", range(3))
def test_concurrent_later_change_ends_with_one_set_of_rows(ledger: Engine, repeat: int) -> None:
    """The same decided change from racing threads is applied once: one decision, the run at its step."""
    record = decision()
    record_stage_change(ledger, change(1, Stage.VALIDATING, run=stamp()))
    record_stage_change(ledger, change(2, Stage.AWAITING_DECISION, case=open_case()))
    decided = change(3, Stage.DELIVERING, case=decided_case(record), decision=record, override=True)

    answers = race(8, lambda: record_stage_change(ledger, decided))

    assert 1 == answers.count(True)
    assert {"runs": 1, "cases": 1, "violations": 3, "decisions": 1} == {k: v for k, v in counts(ledger).items() if v}
    assert ("delivering", 3) == (run_row(ledger).stage, run_row(ledger).last_step)


def test_concurrent_deliveries_agree_on_the_first(ledger: Engine) -> None:
    """Racing delivery records all return the one record that was stored."""
    deliveries = [
        Delivery(system="pos", record_key=WORKFLOW_ID, fields={"attempt": i}, delivered_at=T0 + timedelta(seconds=i))
        for i in range(6)
    ]
    lock = threading.Lock()
    pending = iter(deliveries)

    def next_delivery() -> Delivery:
        with lock:
            return next(pending)

    stored: list[Delivery] = []

    def write() -> bool:
        stored.append(record_delivery(ledger, WORKFLOW_ID, "reservation-to-pos", next_delivery()))
        return True

    race(len(deliveries), write)
    assert 1 == counts(ledger)["deliveries"]
    assert 1 == len({d.model_dump_json() for d in stored})


def test_concurrent_refusals_end_with_one_row(ledger: Engine) -> None:
    """The same refusal from racing threads is recorded once; the others answer False."""
    answers = race(8, lambda: record_refusal(ledger, refusal(0)))
    assert (1, 1) == (answers.count(True), counts(ledger)["refused_decisions"])


def test_concurrent_escalations_end_with_one_row(ledger: Engine) -> None:
    """The same escalation from racing threads is recorded once; the others answer False."""
    opened(ledger)
    answers = race(8, lambda: record_escalation(ledger, escalation()))
    assert (1, 1) == (answers.count(True), counts(ledger)["escalations"])
