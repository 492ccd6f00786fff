"""Purging the ledger, on SQLite and PostgreSQL: ended runs older than the cutoff lose what their events carried and
keep their audit trail and figures; open and recent runs keep everything; a purge never repeats; migration 0005."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import command
from sqlalchemy import Engine, MetaData, inspect, select
from sqlmodel import Session, SQLModel

from examples.restaurant import reservation_to_pos
from handoff.activities.ledger.backtest import recorded_runs
from handoff.activities.ledger.database import make_engine
from handoff.activities.ledger.migrate import alembic_config, current, head, upgrade
from handoff.activities.ledger.purge import count_purgeable, purge_runs, purged_on
from handoff.activities.ledger.reads import case_detail, status_from_ledger, utc
from handoff.activities.ledger.report import build_report
from handoff.activities.ledger.tables import RunRow
from handoff.activities.ledger.writes import record_delivery, record_escalation, record_refusal, record_stage_change
from handoff.schemas.activities import EscalationRecord, RefusalRecord, RunStamp, StageChange
from handoff.schemas.cases import (
    CaseStatus,
    DecisionRecord,
    DecisionRequest,
    Escalation,
    ExceptionCase,
    RefusedDecision,
    Violation,
)
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import Delivery, Stage

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=200)
CUTOFF = NOW - timedelta(days=90)
HANDOFF = "reservation-to-pos"
PAYLOAD = {
    "reservation": {"id": "R-1", "party_size": 14},
    "guest": {"name": "Ada Lovelace", "phone": "+44 20 7946 0000"},
}


def _at(start: datetime, minutes: int) -> datetime:
    return start + timedelta(minutes=minutes)


def recorded_run(engine: Engine, key: str, start: datetime, end: Stage | None) -> str:
    """A run received at `start` whose case an operator corrects (after a refused try and an escalation), then
    delivered or rejected an hour later; or left waiting on its case when `end` is None."""
    workflow_id = f"{HANDOFF}/{key}"
    case_id = f"{workflow_id}/case-1"
    stamp = RunStamp(
        handoff=HANDOFF,
        event="reservation.confirmed",
        dedupe_key=key,
        contract_version=1,
        contract_hash="c0ffee",
        payload=PAYLOAD,
        received_at=start,
    )
    case = ExceptionCase(
        id=case_id,
        handoff=HANDOFF,
        workflow_id=workflow_id,
        violations=[
            Violation(rule="party <= 12", kind="max", field="reservation.party_size", value=14, reason="too big"),
            Violation(rule="phone pattern", kind="pattern", field="guest.phone", value="+44 20", reason="a phone"),
        ],
        payload=PAYLOAD,
        owner_group="front-of-house",
        opened_at=_at(start, 1),
        sla_deadline=_at(start, 31),
        allowed=list(DecisionKind),
    )

    def change(step: int, stage: Stage, **fields: Any) -> StageChange:
        return StageChange(workflow_id=workflow_id, step=step, stage=stage, at=_at(start, step), **fields)

    record_stage_change(engine, change(0, Stage.VALIDATING, run=stamp))
    record_stage_change(engine, change(1, Stage.AWAITING_DECISION, case=case))
    request = DecisionRequest(case_id=case_id, decision=DecisionKind.APPROVE, operator="chef", reason="hungry")
    record_refusal(
        engine,
        RefusalRecord(
            workflow_id=workflow_id,
            handoff=HANDOFF,
            sequence=0,
            refused=RefusedDecision(request=request, refusal="not your group", at=_at(start, 2)),
        ),
    )
    record_escalation(
        engine,
        EscalationRecord(
            workflow_id=workflow_id,
            case_id=case_id,
            escalation=Escalation(from_group="front-of-house", to_group="restaurant-managers", at=_at(start, 31)),
            sla_deadline=_at(start, 61),
        ),
    )
    if end is None:
        return workflow_id
    decision = DecisionRecord(
        case_id=case_id,
        decision=DecisionKind.CORRECT if end is Stage.DELIVERED else DecisionKind.REJECT,
        operator="mia",
        group="restaurant-managers",
        reason="four guests, called back",
        patch={"reservation.party_size": 4, "guest.phone": "+44 20 7946 0001"} if end is Stage.DELIVERED else {},
        decided_at=_at(start, 40),
    )
    decided = case.model_copy(
        update={"status": CaseStatus.DECIDED, "decision": decision, "owner_group": "restaurant-managers"}
    )
    record_stage_change(engine, change(40, Stage.VALIDATING, case=decided, decision=decision))
    if end is Stage.DELIVERED:
        fields = {"booking_ref": key, "reservation_party_size": 4, "guest_name": "Ada Lovelace"}
        record_delivery(
            engine,
            workflow_id,
            HANDOFF,
            Delivery(system="pos", record_key=key, fields=fields, delivered_at=_at(start, 59)),
        )
    record_stage_change(engine, change(60, end))
    return workflow_id


def _ledger_rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, by primary key, times in UTC."""
    found: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            rows = connection.execute(select(table).order_by(*table.primary_key.columns)).mappings().all()
            found[table.name] = [
                {key: utc(value) if isinstance(value, datetime) else value for key, value in row.items()}
                for row in rows
            ]
    return found


def _of(rows: list[dict[str, Any]], workflow_ids: set[str]) -> list[dict[str, Any]]:
    """The rows of these runs: by workflow id, or (violations) by their case's id, which starts with it here."""
    return [
        row for row in rows if row.get("workflow_id", str(row.get("case_id")).rsplit("/case-", 1)[0]) in workflow_ids
    ]


def test_purge_removes_what_ended_runs_carried_and_keeps_their_audit_trail_and_figures(ledger: Engine) -> None:
    """Two runs that ended before the cutoff lose payloads, values, patch and delivery values (keys stay); their
    rows, times, decisions, escalations, refusals and the report's figures are as they were."""
    delivered = recorded_run(ledger, "R-OLD-1", T0, Stage.DELIVERED)
    rejected = recorded_run(ledger, "R-OLD-2", _at(T0, 5), Stage.REJECTED)
    contracts = [reservation_to_pos.CONTRACT]
    before = _ledger_rows(ledger)
    report_before = build_report(ledger, contracts, by_version=True, now=NOW)

    assert 2 == count_purgeable(ledger, before=CUTOFF)
    assert 2 == purge_runs(ledger, before=CUTOFF, now=NOW)

    after = _ledger_rows(ledger)
    assert report_before == build_report(ledger, contracts, by_version=True, now=NOW)
    assert {table: len(rows) for table, rows in before.items()} == {t: len(rows) for t, rows in after.items()}
    for table in ("escalations", "refused_decisions"):
        assert before[table] == after[table]
    assert [({}, NOW)] * 2 == [(run["payload"], run["purged_at"]) for run in after["runs"]]
    assert [{**run, "payload": {}, "purged_at": NOW} for run in before["runs"]] == after["runs"]
    assert [{**case, "payload": {}} for case in before["cases"]] == after["cases"]
    assert [{**violation, "value": None} for violation in before["violations"]] == after["violations"]
    assert [{"reservation.party_size": None, "guest.phone": None}, {}] == [d["patch"] for d in after["decisions"]]
    assert [{**d, "patch": dict.fromkeys(d["patch"])} for d in before["decisions"]] == after["decisions"]
    assert [{**d, "fields": dict.fromkeys(d["fields"])} for d in before["deliveries"]] == after["deliveries"]
    assert (NOW, NOW, None) == (
        purged_on(ledger, delivered),
        purged_on(ledger, rejected),
        purged_on(ledger, f"{HANDOFF}/R-NEVER"),
    )


def test_open_and_recent_runs_are_never_purged(ledger: Engine) -> None:
    """A run still waiting on its case (received long ago) and one that ended within the retention keep every row."""
    waiting = recorded_run(ledger, "R-WAITING", T0, None)
    recent = recorded_run(ledger, "R-RECENT", NOW - timedelta(days=89, hours=23), Stage.DELIVERED)
    old = recorded_run(ledger, "R-OLD", T0, Stage.DELIVERED)
    before = _ledger_rows(ledger)

    assert 1 == purge_runs(ledger, before=CUTOFF, now=NOW)

    after = _ledger_rows(ledger)
    kept = {waiting, recent}
    for table in before:
        assert _of(before[table], kept) == _of(after[table], kept), table
    assert (None, None, NOW) == tuple(purged_on(ledger, run) for run in (waiting, recent, old))


def test_a_second_purge_changes_nothing(ledger: Engine) -> None:
    """Purged runs are not purged again: the second purge counts none and leaves every row (and purged_at) as is."""
    recorded_run(ledger, "R-OLD", T0, Stage.DELIVERED)
    assert 1 == purge_runs(ledger, before=CUTOFF, now=NOW)
    once = _ledger_rows(ledger)

    assert (0, 0) == (count_purgeable(ledger, before=NOW), purge_runs(ledger, before=NOW, now=NOW + timedelta(days=1)))
    assert once == _ledger_rows(ledger)


def test_a_large_purge_goes_in_batches_and_misses_none(ledger: Engine) -> None:
    """With a batch of two, five old runs are purged over three transactions, all of them."""
    runs = [recorded_run(ledger, f"R-{number}", _at(T0, number), Stage.REJECTED) for number in range(5)]

    assert 5 == purge_runs(ledger, before=CUTOFF, now=NOW, batch=2)
    assert [NOW] * 5 == [purged_on(ledger, run) for run in runs]


def test_reads_of_a_purged_run_show_empty_payloads_not_corrections_of_nothing(ledger: Engine) -> None:
    """The ledger's status of a purged run has an empty payload (its correction is not applied to nothing), cases
    and deliveries without values; `case_detail` the same; backtest leaves the run out."""
    workflow_id = recorded_run(ledger, "R-OLD", T0, Stage.DELIVERED)
    kept = recorded_run(ledger, "R-KEPT", NOW - timedelta(days=1), Stage.DELIVERED)
    before = status_from_ledger(ledger, workflow_id)
    assert before is not None and 4 == before.payload["reservation"]["party_size"]

    purge_runs(ledger, before=CUTOFF, now=NOW)

    status = status_from_ledger(ledger, workflow_id)
    assert status is not None
    assert ({}, [{}], [[None, None]]) == (
        status.payload,
        [case.payload for case in status.cases],
        [[v.value for v in case.violations] for case in status.cases],
    )
    assert [{"booking_ref": None, "reservation_party_size": None, "guest_name": None}] == [
        d.fields for d in status.deliveries
    ]
    decided = status.cases[0].decision
    assert decided is not None and ("mia", "four guests, called back") == (decided.operator, decided.reason)
    detail = case_detail(ledger, f"{workflow_id}/case-1", now=NOW)
    assert detail is not None and ({}, ["party <= 12", "phone pattern"]) == (
        detail.payload,
        [v.rule for v in detail.violations],
    )
    backtested = recorded_runs(ledger, handoffs=[HANDOFF], since=T0 - timedelta(days=1))
    assert [kept] == [run.workflow_id for run in backtested]


def test_upgrade_to_0005_adds_purged_at_and_keeps_every_run(ledger_url: str) -> None:
    """A 0004 ledger's runs are kept, as never purged; going back to 0004 drops the column and keeps the runs."""
    engine = make_engine(ledger_url)
    try:
        assert "0004" == upgrade(engine, "0004")
        old = MetaData()
        old.reflect(engine)
        run = {
            "workflow_id": f"{HANDOFF}/R-1",
            "handoff": HANDOFF,
            "event": "reservation.confirmed",
            "dedupe_key": "R-1",
            "contract_version": 1,
            "contract_hash": "c0ffee",
            "stage": "delivered",
            "last_step": 3,
            "payload": PAYLOAD,
            "received_at": T0,
            "updated_at": T0,
            "finished_at": T0,
            "override": False,
            "failure": None,
        }
        with engine.begin() as connection:
            connection.execute(old.tables["runs"].insert(), [run])

        assert head() == upgrade(engine)

        with Session(engine) as session:
            row = session.get(RunRow, f"{HANDOFF}/R-1")
        assert row is not None and (PAYLOAD, None) == (row.payload, row.purged_at)
        assert 1 == purge_runs(engine, before=CUTOFF, now=NOW)
        with engine.connect() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0004")
            assert "purged_at" not in {column["name"] for column in inspect(connection).get_columns("runs")}
            assert [(f"{HANDOFF}/R-1", {})] == [
                (workflow_id, payload if isinstance(payload, dict) else json.loads(payload))
                for workflow_id, payload in connection.exec_driver_sql("SELECT workflow_id, payload FROM runs").all()
            ]
            connection.commit()
        assert "0004" == current(engine)
    finally:
        engine.dispose()
