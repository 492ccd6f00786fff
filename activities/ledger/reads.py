"""Reading the ledger for people: open cases, one case in full (who holds it, its history), recent runs, and a
run's status once Temporal has forgotten it.

The CLI and the HTTP API answer from these, with the models of `schemas.api`. Every function blocks (SQLAlchemy on
a synchronous driver): async callers go through `asyncio.to_thread`. SQLite returns naive datetimes; the ledger
stores UTC, so they are read as UTC.

Who holds a case is read, not only stored: a claim counts while the case is open and its holder is an operator of
the group that owns it now (`holder`). The workflow, which moves a case to the next group or decides it, never
touches claims: so a decided case holds nobody, and a claim from before an escalation is no claim, without anyone
having to release it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from handoff.activities.ledger.tables import (
    CaseEventRow,
    CaseRow,
    DecisionRow,
    DeliveryRow,
    EscalationRow,
    OperatorRow,
    RefusedDecisionRow,
    RunRow,
    ViolationRow,
)
from handoff.schemas.api import CaseDetail, CaseSummary, RefusedAttempt, RunSummary
from handoff.schemas.case_history import CaseEvent, CaseEventKind
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
from handoff.schemas.operators import Role
from handoff.schemas.paths import patched
from handoff.schemas.runs import Delivery, HandoffStatus, Stage


def utc(moment: datetime) -> datetime:
    """The moment as an aware UTC datetime (SQLite hands back naive ones)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def open_cases(
    ledger: Engine, *, now: datetime, group: str | None = None, handoff: str | None = None
) -> list[CaseSummary]:
    """The cases waiting for a decision, the most urgent (earliest SLA deadline) first."""
    query = select(CaseRow).where(CaseRow.status == CaseStatus.OPEN.value)
    if group is not None:
        query = query.where(CaseRow.owner_group == group)
    if handoff is not None:
        query = query.where(CaseRow.handoff == handoff)
    with Session(ledger) as session:
        cases = session.exec(query.order_by(col(CaseRow.sla_deadline), col(CaseRow.id))).all()
        rules = _violation_rules(session, [case.id for case in cases])
        claimants = claimants_of(session, cases)
    return [_summary(case, rules.get(case.id, []), now, holder(case, claimants)) for case in cases]


def case_detail(ledger: Engine, case_id: str, *, now: datetime) -> CaseDetail | None:
    """Everything the ledger knows about one case, or None when there is no such case."""
    with Session(ledger) as session:
        case = session.get(CaseRow, case_id)
        if case is None:
            return None
        run = session.get(RunRow, case.workflow_id)
        violations = _violations(session, [case_id]).get(case_id, [])
        escalations = _escalations(session, [case_id]).get(case_id, [])
        decision = session.get(DecisionRow, case_id)
        refused = _refused_rows(session, case_id)
        acts = _acts(session, case_id)
        held_by = holder(case, claimants_of(session, [case]))
    summary = _summary(case, [v.rule for v in violations], now, held_by)
    return CaseDetail(
        id=case.id,
        handoff=case.handoff,
        workflow_id=case.workflow_id,
        run_stage=Stage(run.stage) if run else None,
        owner_group=case.owner_group,
        status=summary.status,
        opened_at=summary.opened_at,
        sla_deadline=summary.sla_deadline,
        age_seconds=summary.age_seconds,
        sla_left_seconds=summary.sla_left_seconds,
        allowed=[DecisionKind(kind) for kind in case.allowed],
        violations=violations,
        payload=case.payload,
        escalations=escalations,
        decision=_decision(decision) if decision else None,
        refused=[
            RefusedAttempt(
                decision=row.decision, operator=row.operator, reason=row.reason, refusal=row.refusal, at=utc(row.at)
            )
            for row in refused
        ],
        claimed_by=summary.claimed_by,
        claimed_at=summary.claimed_at,
        history=_history(case, escalations, acts, refused, decision),
    )


def history_of_case(ledger: Engine, case_id: str) -> list[CaseEvent] | None:
    """The case's history, oldest first (`schemas.case_history.CaseEvent`); None when there is no such case."""
    with Session(ledger) as session:
        case = session.get(CaseRow, case_id)
        if case is None:
            return None
        return _history(
            case,
            _escalations(session, [case_id]).get(case_id, []),
            _acts(session, case_id),
            _refused_rows(session, case_id),
            session.get(DecisionRow, case_id),
        )


def holder(case: CaseRow, claimants: Mapping[str, OperatorRow]) -> str | None:
    """Who holds the case now, given the ledger's rows of its claimant (`claimants_of`): its claim, while the case is
    open and the claimant is an operator of the group that owns it now. Otherwise nobody: a decided case needs no
    holder, and a claim from before an escalation (or by someone since moved out of the group) must not keep the
    group that owns the case now from taking it."""
    if case.status != CaseStatus.OPEN.value or case.claimed_by is None:
        return None
    claimant = claimants.get(case.claimed_by)
    if claimant is None or claimant.role != Role.OPERATOR.value or case.owner_group not in claimant.groups:
        return None
    return case.claimed_by


def claimants_of(session: Session, cases: Iterable[CaseRow]) -> dict[str, OperatorRow]:
    """The operators rows of whoever has claimed one of these cases, by name, in one query."""
    names = sorted({case.claimed_by for case in cases if case.claimed_by is not None})
    if not names:
        return {}
    return {row.name: row for row in session.exec(select(OperatorRow).where(col(OperatorRow.name).in_(names))).all()}


def recent_runs(
    ledger: Engine, *, handoff: str | None = None, stage: Stage | None = None, limit: int = 50
) -> list[RunSummary]:
    """The most recently received runs first, at most `limit`."""
    query = select(RunRow)
    if handoff is not None:
        query = query.where(RunRow.handoff == handoff)
    if stage is not None:
        query = query.where(RunRow.stage == stage.value)
    query = query.order_by(col(RunRow.received_at).desc(), col(RunRow.workflow_id)).limit(limit)
    with Session(ledger) as session:
        runs = session.exec(query).all()
        counts = _case_counts(session, [run.workflow_id for run in runs])
    return [_run_summary(run, counts.get(run.workflow_id, 0)) for run in runs]


def run_summary(ledger: Engine, workflow_id: str) -> RunSummary | None:
    """The ledger's line for one run, or None when the ledger never saw it."""
    with Session(ledger) as session:
        run = session.get(RunRow, workflow_id)
        counts = _case_counts(session, [workflow_id])
    return None if run is None else _run_summary(run, counts.get(workflow_id, 0))


def status_from_ledger(ledger: Engine, workflow_id: str) -> HandoffStatus | None:
    """The run as the `status` query would answer, rebuilt from the ledger (for runs Temporal no longer has).

    The payload is the one received with every correction applied in order; a purged run's is empty (its corrections
    kept only which fields they set). Refused decisions keep what the ledger stored: the operator's groups and the
    kind of refusal are not part of the audit row.
    """
    with Session(ledger) as session:
        run = session.get(RunRow, workflow_id)
        if run is None:
            return None
        case_rows = session.exec(
            select(CaseRow).where(CaseRow.workflow_id == workflow_id).order_by(col(CaseRow.opened_at))
        ).all()
        case_ids = [case.id for case in case_rows]
        violations = _violations(session, case_ids)
        escalations = _escalations(session, case_ids)
        decisions = {
            row.case_id: _decision(row)
            for row in session.exec(select(DecisionRow).where(col(DecisionRow.case_id).in_(case_ids))).all()
        }
        refusals = session.exec(
            select(RefusedDecisionRow)
            .where(RefusedDecisionRow.workflow_id == workflow_id)
            .order_by(col(RefusedDecisionRow.sequence))
        ).all()
        deliveries = session.exec(
            select(DeliveryRow)
            .where(DeliveryRow.workflow_id == workflow_id, col(DeliveryRow.undone_at).is_(None))  # undone: not held
            .order_by(col(DeliveryRow.system))
        ).all()
    refused_by_case: dict[str, list[RefusedDecision]] = defaultdict(list)
    for row in refusals:
        refused_by_case[row.case_id].append(_refused(row))
    cases = [
        ExceptionCase(
            id=row.id,
            handoff=row.handoff,
            workflow_id=row.workflow_id,
            violations=violations.get(row.id, []),
            payload=row.payload,
            owner_group=row.owner_group,
            opened_at=utc(row.opened_at),
            sla_deadline=utc(row.sla_deadline),
            allowed=[DecisionKind(kind) for kind in row.allowed],
            status=CaseStatus(row.status),
            decision=decisions.get(row.id),
            escalations=escalations.get(row.id, []),
            refused=refused_by_case.pop(row.id, []),
        )
        for row in case_rows
    ]
    payload = run.payload
    for decision in sorted(decisions.values(), key=lambda d: d.decided_at):
        if decision.decision is DecisionKind.CORRECT and run.purged_at is None:
            payload = patched(payload, decision.patch)
    return HandoffStatus(
        handoff=run.handoff,
        workflow_id=run.workflow_id,
        contract_version=run.contract_version,
        contract_hash=run.contract_hash,
        stage=Stage(run.stage),
        payload=payload,
        cases=cases,
        deliveries=[
            Delivery(
                system=row.system, record_key=row.record_key, fields=row.fields, delivered_at=utc(row.delivered_at)
            )
            for row in deliveries
        ],
        override=run.override,
        failure=run.failure,
        unmatched_refusals=[refused for unmatched in refused_by_case.values() for refused in unmatched],
    )


# -- rows to models ---------------------------------------------------------------------------------------------------


def _summary(case: CaseRow, rules: list[str], now: datetime, held_by: str | None) -> CaseSummary:
    opened_at, deadline = utc(case.opened_at), utc(case.sla_deadline)
    return CaseSummary(
        id=case.id,
        handoff=case.handoff,
        workflow_id=case.workflow_id,
        owner_group=case.owner_group,
        status=CaseStatus(case.status),
        opened_at=opened_at,
        sla_deadline=deadline,
        age_seconds=round((now - opened_at).total_seconds(), 3),
        sla_left_seconds=round((deadline - now).total_seconds(), 3),
        violations=rules,
        decision=DecisionKind(case.decision) if case.decision else None,
        claimed_by=held_by,
        claimed_at=utc(case.claimed_at) if held_by is not None and case.claimed_at is not None else None,
    )


def _history(
    case: CaseRow,
    escalations: Sequence[Escalation],
    acts: Sequence[CaseEventRow],
    refused: Sequence[RefusedDecisionRow],
    decision: DecisionRow | None,
) -> list[CaseEvent]:
    """One timeline from the case's rows; at the same moment, the order below (opened first, decided last)."""
    first_group = escalations[0].from_group if escalations else case.owner_group
    lines = [CaseEvent(kind=CaseEventKind.OPENED, at=utc(case.opened_at), to_group=first_group)]
    lines += [
        CaseEvent(kind=CaseEventKind.ESCALATED, at=e.at, from_group=e.from_group, to_group=e.to_group)
        for e in escalations
    ]
    lines += [
        CaseEvent(
            kind=CaseEventKind(act.kind),
            at=utc(act.at),
            operator=act.operator,
            to_operator=act.to_operator,
            text=act.text,
        )
        for act in acts
    ]
    lines += [
        CaseEvent(
            kind=CaseEventKind.REFUSED,
            at=utc(row.at),
            operator=row.operator,
            decision=DecisionKind(row.decision),
            text=row.refusal,
        )
        for row in refused
    ]
    if decision is not None:
        lines.append(
            CaseEvent(
                kind=CaseEventKind.DECIDED,
                at=utc(decision.decided_at),
                operator=decision.operator,
                decision=DecisionKind(decision.decision),
                text=decision.reason,
            )
        )
    return sorted(lines, key=lambda line: line.at)  # stable: ties keep the order above


def _run_summary(run: RunRow, cases: int) -> RunSummary:
    return RunSummary(
        workflow_id=run.workflow_id,
        handoff=run.handoff,
        event=run.event,
        dedupe_key=run.dedupe_key,
        contract_version=run.contract_version,
        contract_hash=run.contract_hash,
        stage=Stage(run.stage),
        received_at=utc(run.received_at),
        updated_at=utc(run.updated_at),
        finished_at=utc(run.finished_at) if run.finished_at else None,
        override=run.override,
        failure=run.failure,
        cases=cases,
    )


def _decision(row: DecisionRow) -> DecisionRecord:
    return DecisionRecord(
        case_id=row.case_id,
        decision=DecisionKind(row.decision),
        operator=row.operator,
        group=row.group,
        reason=row.reason,
        patch=row.patch,
        decided_at=utc(row.decided_at),
        by_timeout=row.by_timeout,
    )


def _refused(row: RefusedDecisionRow) -> RefusedDecision:
    request = DecisionRequest(
        case_id=row.case_id, decision=DecisionKind(row.decision), operator=row.operator, reason=row.reason
    )
    return RefusedDecision(request=request, refusal=row.refusal, at=utc(row.at))


def _refused_rows(session: Session, case_id: str) -> Sequence[RefusedDecisionRow]:
    return session.exec(
        select(RefusedDecisionRow)
        .where(RefusedDecisionRow.case_id == case_id)
        .order_by(col(RefusedDecisionRow.at), col(RefusedDecisionRow.sequence))
    ).all()


def _acts(session: Session, case_id: str) -> Sequence[CaseEventRow]:
    return session.exec(
        select(CaseEventRow).where(CaseEventRow.case_id == case_id).order_by(col(CaseEventRow.at), col(CaseEventRow.id))
    ).all()


def _violations(session: Session, case_ids: Iterable[str]) -> dict[str, list[Violation]]:
    rows = session.exec(
        select(ViolationRow)
        .where(col(ViolationRow.case_id).in_(list(case_ids)))
        .order_by(col(ViolationRow.case_id), col(ViolationRow.position))
    ).all()
    found: dict[str, list[Violation]] = defaultdict(list)
    for row in rows:
        found[row.case_id].append(
            Violation(rule=row.rule, kind=row.kind, field=row.field, value=row.value, reason=row.reason)
        )
    return found


def _violation_rules(session: Session, case_ids: Iterable[str]) -> dict[str, list[str]]:
    return {case_id: [v.rule for v in found] for case_id, found in _violations(session, case_ids).items()}


def _escalations(session: Session, case_ids: Iterable[str]) -> dict[str, list[Escalation]]:
    rows = session.exec(
        select(EscalationRow)
        .where(col(EscalationRow.case_id).in_(list(case_ids)))
        .order_by(col(EscalationRow.at), col(EscalationRow.id))
    ).all()
    found: dict[str, list[Escalation]] = defaultdict(list)
    for row in rows:
        found[row.case_id].append(Escalation(from_group=row.from_group, to_group=row.to_group, at=utc(row.at)))
    return found


def _case_counts(session: Session, workflow_ids: Iterable[str]) -> dict[str, int]:
    rows = session.exec(
        select(CaseRow.workflow_id, func.count())
        .where(col(CaseRow.workflow_id).in_(list(workflow_ids)))
        .group_by(col(CaseRow.workflow_id))
    ).all()
    return {workflow_id: count for workflow_id, count in rows}


def open_runs_by_version(ledger: Engine) -> dict[tuple[str, int], int]:
    """How many runs have not ended, per (handoff, contract version): what a removed version would strand."""
    final = [stage.value for stage in Stage if stage.is_final]
    query = (
        select(RunRow.handoff, RunRow.contract_version, func.count())
        .where(col(RunRow.stage).not_in(final))
        .group_by(col(RunRow.handoff), col(RunRow.contract_version))
    )
    with Session(ledger) as session:
        return {(handoff, version): count for handoff, version, count in session.exec(query).all()}
