"""Idempotent writes to the ledger. Each is keyed so that an activity retried after a crash changes nothing twice.

Runs are keyed by workflow id and a step counter the workflow increments per record; cases by case id; decisions
by case; escalations by case and group; refusals by run and sequence; deliveries by run and system.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from handoff.activities.ledger.database import session_scope
from handoff.activities.ledger.outbox import queue_notice
from handoff.activities.ledger.tables import (
    CaseEventRow,
    CaseRow,
    DecisionRow,
    DeliveryRow,
    EscalationRow,
    RefusedDecisionRow,
    RunRow,
    ViolationRow,
)
from handoff.schemas.activities import EscalationRecord, FirstApprovalRecord, RefusalRecord, StageChange
from handoff.schemas.cases import DecisionRecord, ExceptionCase
from handoff.schemas.runs import Delivery

log = structlog.get_logger(__name__)


class LedgerError(Exception):
    """The ledger was asked for something that cannot be right (a record for a run it never saw)."""


def record_stage_change(engine: Engine, change: StageChange) -> bool:
    """Apply one stage change; False when it was applied before (a retry), True when it changed the ledger."""
    try:
        return _record_stage_change(engine, change)
    except IntegrityError:
        # Two attempts raced to insert the same rows; the other one won, so this change is already there.
        log.info("ledger.stage_change_raced", workflow_id=change.workflow_id, step=change.step)
        return _record_stage_change(engine, change)


def _record_stage_change(engine: Engine, change: StageChange) -> bool:
    with session_scope(engine) as session:
        run = session.get(RunRow, change.workflow_id, with_for_update=True)
        if run is None:
            if change.run is None:
                raise LedgerError(f"run {change.workflow_id!r} is not in the ledger and its change carries no stamp")
            stamp = change.run
            run = RunRow(
                workflow_id=change.workflow_id,
                handoff=stamp.handoff,
                event=stamp.event,
                dedupe_key=stamp.dedupe_key,
                contract_version=stamp.contract_version,
                contract_hash=stamp.contract_hash,
                stage=change.stage.value,
                last_step=change.step,
                payload=stamp.payload,
                received_at=stamp.received_at,
                updated_at=change.at,
            )
            session.add(run)
        elif change.step <= run.last_step:
            return False
        run.stage = change.stage.value
        run.last_step = change.step
        run.updated_at = change.at
        run.override = change.override if change.restates else run.override or change.override
        if change.failure is not None:
            run.failure = change.failure
        if change.stage.is_final:
            run.finished_at = change.at
        elif change.restates:
            run.finished_at = None
        if change.case is not None:
            _upsert_case(session, change.case)
        if change.decision is not None:
            _put_decision(session, run.handoff, change.workflow_id, change.decision)
        if change.notice is not None:
            queue_notice(session, change.notice)
    log.info("ledger.stage_change", workflow_id=change.workflow_id, stage=change.stage.value, step=change.step)
    return True


def _upsert_case(session: Session, case: ExceptionCase) -> None:
    row = session.get(CaseRow, case.id)
    if row is None:
        row = CaseRow(
            id=case.id,
            workflow_id=case.workflow_id,
            handoff=case.handoff,
            owner_group=case.owner_group,
            status=case.status.value,
            opened_at=case.opened_at,
            sla_deadline=case.sla_deadline,
            allowed=[d.value for d in case.allowed],
            payload=case.payload,
        )
        session.add(row)
        session.flush()
        for position, violation in enumerate(case.violations):
            session.add(
                ViolationRow(
                    case_id=case.id,
                    position=position,
                    rule=violation.rule,
                    kind=violation.kind,
                    field=violation.field,
                    value=violation.value,
                    reason=violation.reason,
                )
            )
    row.owner_group = case.owner_group
    row.status = case.status.value
    row.sla_deadline = case.sla_deadline
    if case.decision is not None:
        row.decision = case.decision.decision.value
        row.decided_at = case.decision.decided_at


def record_decision(engine: Engine, change: StageChange) -> bool:
    """Record a decision's stage change for its verification (`verify_decision`); whether the ledger now holds this
    decision at this step: written now, or by an earlier attempt of the same verification. False when the step holds
    another change (an attempt the run never took): the run then records the decision at a step of its own."""
    assert change.decision is not None
    if record_stage_change(engine, change):
        return True
    with session_scope(engine) as session:
        run = session.get(RunRow, change.workflow_id)
        row = session.get(DecisionRow, change.decision.case_id)
        held = run is not None and run.last_step == change.step and run.stage == change.stage.value
        return held and row is not None and _same_decision(row, change.decision)


def _decision_fields(decision: DecisionRecord) -> dict[str, Any]:
    return {
        "decision": decision.decision.value,
        "operator": decision.operator,
        "group": decision.group,
        "reason": decision.reason,
        "patch": decision.patch,
        "decided_at": decision.decided_at,
        "by_timeout": decision.by_timeout,
    }


def _same_decision(row: DecisionRow, decision: DecisionRecord) -> bool:
    """The same decision, taken at whatever time (a retried workflow task takes it again, later)."""
    fields = _decision_fields(decision)
    return all(getattr(row, name) == value for name, value in fields.items() if name != "decided_at")


def _put_decision(session: Session, handoff: str, workflow_id: str, decision: DecisionRecord) -> None:
    """The case's decision as this stage change, newer than any the ledger applied, carries it.

    A run decides a case once, so a row already there with another decision is one the run never took: a decision's
    verification recorded it (`verify_decision`) and then failed, and the run refused the decision and went on (a
    case's decision and its stage change are written together). The run's own word replaces it.
    """
    taken = _decision_fields(decision)
    row = session.get(DecisionRow, decision.case_id)
    if row is None:
        session.add(DecisionRow(case_id=decision.case_id, workflow_id=workflow_id, handoff=handoff, **taken))
        return
    if _same_decision(row, decision):
        return
    log.warning(
        "ledger.decision_replaced",
        workflow_id=workflow_id,
        case_id=decision.case_id,
        unconfirmed=f"{row.decision} by {row.operator}",
        taken=f"{decision.decision.value} by {decision.operator}",
    )
    for name, value in taken.items():
        setattr(row, name, value)


FIRST_APPROVAL = "first-approval"
"""The `case_events` kind of a four-eyes approval waiting for a second operator."""


def record_first_approval(engine: Engine, record: FirstApprovalRecord) -> bool:
    """Record a four-eyes first approval in the case's history; False when it was recorded before (a retry)."""
    approval = record.approval
    with session_scope(engine) as session:
        existing = session.exec(
            select(CaseEventRow).where(
                CaseEventRow.case_id == approval.case_id,
                CaseEventRow.kind == FIRST_APPROVAL,
                CaseEventRow.at == approval.decided_at,
                CaseEventRow.operator == approval.operator,
            )
        ).first()
        if existing is not None:
            return False
        if session.get(CaseRow, approval.case_id) is None:
            raise LedgerError(f"case {approval.case_id!r} is not in the ledger")
        # The corrected fields by name, never their values: the history is shown unmasked and outlives a purge.
        patch = f" of {', '.join(sorted(approval.patch))}" if approval.patch else ""
        session.add(
            CaseEventRow(
                case_id=approval.case_id,
                workflow_id=record.workflow_id,
                kind=FIRST_APPROVAL,
                operator=approval.operator,
                text=f"{approval.decision.value}{patch}: {approval.reason}",
                at=approval.decided_at,
            )
        )
    log.info("ledger.first_approval", workflow_id=record.workflow_id, case_id=approval.case_id)
    return True


def record_escalation(engine: Engine, record: EscalationRecord) -> bool:
    """Record that a case passed to the next group; False when it was recorded before."""
    try:
        return _record_escalation(engine, record)
    except IntegrityError:
        # Another attempt inserted the same escalation between our check and our insert: it is recorded.
        log.info("ledger.escalation_raced", workflow_id=record.workflow_id, case_id=record.case_id)
        return _record_escalation(engine, record)


def _record_escalation(engine: Engine, record: EscalationRecord) -> bool:
    with session_scope(engine) as session:
        existing = session.exec(
            select(EscalationRow).where(
                EscalationRow.case_id == record.case_id, EscalationRow.to_group == record.escalation.to_group
            )
        ).first()
        if existing is not None:
            return False
        case = session.get(CaseRow, record.case_id)
        if case is None:
            raise LedgerError(f"case {record.case_id!r} is not in the ledger")
        case.owner_group = record.escalation.to_group
        case.sla_deadline = record.sla_deadline
        session.add(
            EscalationRow(
                case_id=record.case_id,
                workflow_id=record.workflow_id,
                from_group=record.escalation.from_group,
                to_group=record.escalation.to_group,
                at=record.escalation.at,
            )
        )
        if record.notice is not None:
            queue_notice(session, record.notice)
    log.info("ledger.escalation", workflow_id=record.workflow_id, case_id=record.case_id)
    return True


def record_refusal(engine: Engine, record: RefusalRecord) -> bool:
    """Record a refused decision signal; False when it was recorded before."""
    try:
        return _record_refusal(engine, record)
    except IntegrityError:
        log.info("ledger.refusal_raced", workflow_id=record.workflow_id, sequence=record.sequence)
        return _record_refusal(engine, record)


def _record_refusal(engine: Engine, record: RefusalRecord) -> bool:
    with session_scope(engine) as session:
        existing = session.exec(
            select(RefusedDecisionRow).where(
                RefusedDecisionRow.workflow_id == record.workflow_id, RefusedDecisionRow.sequence == record.sequence
            )
        ).first()
        if existing is not None:
            return False
        request = record.refused.request
        session.add(
            RefusedDecisionRow(
                workflow_id=record.workflow_id,
                handoff=record.handoff,
                sequence=record.sequence,
                case_id=request.case_id,
                decision=request.decision.value,
                operator=request.operator,
                reason=request.reason,
                refusal=record.refused.refusal,
                at=record.refused.at,
            )
        )
        if record.reopened is not None:
            _reopen(session, record.reopened)
    log.info("ledger.refusal", workflow_id=record.workflow_id, case_id=record.refused.request.case_id)
    return True


def _reopen(session: Session, change: StageChange) -> None:
    """The run back in its stage with its case open, at a step newer than the one a verification may have written
    without confirming it: that write's decision, stage and finish are undone. A later change applied already wins."""
    case = change.case
    assert case is not None and case.decision is None
    run = session.get(RunRow, change.workflow_id, with_for_update=True)
    if run is None or change.step <= run.last_step:
        return
    run.stage = change.stage.value
    run.last_step = change.step
    run.updated_at = change.at
    run.override = change.override  # the run's own: an approval written unconfirmed set it
    run.finished_at = None
    row = session.get(CaseRow, case.id)
    if row is not None:
        row.status = case.status.value
        row.owner_group = case.owner_group
        row.sla_deadline = case.sla_deadline
        row.decision = None
        row.decided_at = None
    unconfirmed = session.get(DecisionRow, case.id)
    if unconfirmed is not None:
        log.warning("ledger.decision_undone", workflow_id=change.workflow_id, case_id=case.id)
        session.delete(unconfirmed)


def record_delivery(engine: Engine, workflow_id: str, handoff: str, delivery: Delivery) -> Delivery:
    """Record a delivery; when it was recorded before, return the first record (the write happened once).

    A record an ordered delivery's compensation undid is written again by a later delivery: that one stands now.
    """
    try:
        with session_scope(engine) as session:
            existing = session.get(DeliveryRow, (workflow_id, delivery.system))
            if existing is not None and existing.undone_at is not None:
                existing.fields = delivery.fields
                existing.delivered_at = delivery.delivered_at
                existing.undone_at = None
                session.add(existing)
                return delivery
            if existing is not None:
                return _as_delivery(existing)
            session.add(
                DeliveryRow(
                    workflow_id=workflow_id,
                    system=delivery.system,
                    handoff=handoff,
                    record_key=delivery.record_key,
                    fields=delivery.fields,
                    delivered_at=delivery.delivered_at,
                )
            )
    except IntegrityError:
        with session_scope(engine) as session:
            row = session.get(DeliveryRow, (workflow_id, delivery.system))
            assert row is not None  # the IntegrityError says the other writer committed it
            return _as_delivery(row)
    return delivery


def delivery_undone(engine: Engine, workflow_id: str, system: str) -> bool:
    """Whether the ledger holds the run's write to `system` as undone: a retried undo then has nothing left to do."""
    with Session(engine) as session:
        row = session.get(DeliveryRow, (workflow_id, system))
    return row is not None and row.undone_at is not None


def mark_delivery_undone(engine: Engine, workflow_id: str, system: str, at: datetime) -> bool:
    """Mark the run's write to `system` undone; False when the ledger has no such write, or it was marked before
    (a retried undo keeps the first time)."""
    with session_scope(engine) as session:
        row = session.get(DeliveryRow, (workflow_id, system))
        if row is None or row.undone_at is not None:
            return False
        row.undone_at = at
        session.add(row)
    log.info("ledger.delivery_undone", workflow_id=workflow_id, system=system)
    return True


def _as_delivery(row: DeliveryRow) -> Delivery:
    return Delivery(
        system=row.system, record_key=row.record_key, fields=row.fields, delivered_at=_aware(row.delivered_at)
    )


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; the ledger stores UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
