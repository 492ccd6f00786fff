"""Claiming, releasing, reassigning and commenting on a case; who holds it; and the claim check a decision meets.

The API, the CLI and the web inbox call these: each act is one transaction that changes the case's holder (if it
does) and adds its row to `case_events`, or refuses with `CaseActionRefused`, whose `kind` says why and whose message
says it to the person. The rules:

- Only an operator (role operator) of the group that owns the case now may claim it, release it, hand it on or
  comment on it. Who that is comes from the ledger's operators table, read in the same transaction, not from the
  caller's copy: a group taken away from someone counts at once.
- A case held by someone is theirs: a claim by another is refused, naming the holder. The holder releases it or hands
  it to another operator of the group; an operator may also hand a case nobody holds to a colleague (or to
  themselves: that is a claim). A claim counts only while the case is open and its holder is an operator of the
  group that owns it now (`reads.holder`): a claim from before an escalation is no claim, so the next group may
  claim the case without anyone releasing it.
- A decided case holds nobody: it cannot be claimed, released or handed on (the refusal says who decided it). It can
  still be commented on by the group that decided it: what was learned afterwards belongs beside the decision.
- A case held by someone is decided only by its holder. `check_claim_for_decision` is that check, at the edge (the
  API's decision routes and `handoff decide`, `decide-many`); the workflow, the judge of every other rule, knows no
  claims. It runs just before the decision is sent: a claim taken in between does not stop it. A case whose first
  approval (four eyes) waits for a second is open to the group's other operators: the second pair of eyes is by
  definition not the holder's.

Repeats change nothing: claiming a case one holds, releasing a case nobody holds or handing it to its holder answers
with `changed=False` and adds no row. A comment is not a repeat: each call adds one. Two operators claiming one case
at the same moment cannot both win: the holder changes only by a conditional UPDATE on the holder that was read, so
the second finds its condition false (PostgreSQL re-checks it once the first commits; SQLite runs one writer at a
time), reads again and is refused, naming the winner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import structlog
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from handoff.activities.ledger.database import session_scope
from handoff.activities.ledger.reads import claimants_of, history_of_case, holder, utc
from handoff.activities.ledger.tables import CaseEventRow, CaseRow, DecisionRow, EscalationRow, OperatorRow
from handoff.schemas.api import BulkDecisionBody, BulkOutcome
from handoff.schemas.case_history import CaseActionRefusalKind, CaseClaim, CaseEvent, CaseEventKind, CommentText
from handoff.schemas.cases import CaseStatus, DecisionRequest
from handoff.schemas.operators import Operator, Role

log = structlog.get_logger(__name__)

T = TypeVar("T")

HOLDER_ATTEMPTS = 5
"""How often a claim, release or reassignment reads again after losing a race: the second look sees the winner."""

_comment_text: TypeAdapter[str] = TypeAdapter(CommentText)


class CaseActionRefused(Exception):
    """A claim, release, reassignment, comment (or a decision, for its claim check) refused; nothing changed.

    `kind` is the stable name (the API's `kind`, mapped to its status), the message says what to do."""

    def __init__(self, kind: CaseActionRefusalKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class BulkDecisionProblem(ValueError):
    """A bulk decision that cannot be sent as asked (cases of several handoffs, or not of the one named); nothing
    was sent. `kind`: mixed-handoffs or wrong-handoff."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class PlannedDecision:
    """One case of a bulk decision: the request to send to its run, or the outcome it already has (refused)."""

    case_id: str
    workflow_id: str | None = None
    request: DecisionRequest | None = None
    refused: BulkOutcome | None = None


@dataclass(frozen=True)
class _Scene:
    """What an act on a case is judged on, read in the act's transaction."""

    case: CaseRow
    actor: OperatorRow | None
    holder: str | None
    decision: DecisionRow | None


def claim_case(ledger: Engine, case_id: str, operator: Operator, *, at: datetime) -> CaseClaim:
    """`operator` takes the case, so the group sees who is on it. Refused when someone else holds it (naming them),
    when the case is decided, or for anyone but an operator of the group that owns it now."""

    def attempt(session: Session) -> CaseClaim | None:
        scene = _scene(session, case_id, operator.name)
        _may_act(scene, operator.name, "claim")
        if scene.holder == operator.name:
            return _claim(scene.case, operator.name, scene.case.claimed_at, changed=False)
        if scene.holder is not None:
            raise _held(scene, "release it or hand it on")
        if not _change_holder(session, scene.case, operator.name, at):
            return None
        session.add(_act(scene.case, CaseEventKind.CLAIMED, operator.name, at))
        return _claim(scene.case, operator.name, at)

    claim = _with_retries(ledger, attempt)
    log.info("case.claimed", case_id=case_id, operator=operator.name, changed=claim.changed)
    return claim


def release_case(ledger: Engine, case_id: str, operator: Operator, *, at: datetime) -> CaseClaim:
    """The holder lets the case go, so anyone of the group may take it. Releasing a case nobody holds changes
    nothing; a case someone else holds is refused, naming them."""

    def attempt(session: Session) -> CaseClaim | None:
        scene = _scene(session, case_id, operator.name)
        _may_act(scene, operator.name, "release")
        if scene.holder is None:
            return _claim(scene.case, None, None, changed=False)
        if scene.holder != operator.name:
            raise _held(scene, "release it")
        if not _change_holder(session, scene.case, None, None):
            return None
        session.add(_act(scene.case, CaseEventKind.RELEASED, operator.name, at))
        return _claim(scene.case, None, None)

    claim = _with_retries(ledger, attempt)
    log.info("case.released", case_id=case_id, operator=operator.name, changed=claim.changed)
    return claim


def reassign_case(ledger: Engine, case_id: str, by: Operator, to: str, *, at: datetime) -> CaseClaim:
    """`by` hands the case to `to`, an operator of the group that owns it now. `by` must hold it, or nobody may;
    handing it to oneself is a claim, and to its holder changes nothing."""

    def attempt(session: Session) -> CaseClaim | None:
        scene = _scene(session, case_id, by.name)
        _may_act(scene, by.name, "reassign")
        _check_assignee(session, scene.case, to)
        if scene.holder == to:
            return _claim(scene.case, to, scene.case.claimed_at, changed=False)
        if scene.holder not in (None, by.name):
            raise _held(scene, "hand it on")
        if not _change_holder(session, scene.case, to, at):
            return None
        kind = CaseEventKind.CLAIMED if to == by.name else CaseEventKind.REASSIGNED
        session.add(_act(scene.case, kind, by.name, at, to_operator=None if to == by.name else to))
        return _claim(scene.case, to, at)

    claim = _with_retries(ledger, attempt)
    log.info("case.reassigned", case_id=case_id, operator=by.name, to_operator=to, changed=claim.changed)
    return claim


def comment_on_case(ledger: Engine, case_id: str, by: Operator, text: str, *, at: datetime) -> CaseEvent:
    """Add `by`'s note to the case's history: 1 to 2000 characters once trimmed, without NUL. Open or decided, a case
    takes comments from the operators of the group that owns it (that decided it, once decided)."""
    try:
        words = _comment_text.validate_python(text)
    except ValidationError as invalid:
        problem = "; ".join(str(error.get("ctx", {}).get("error") or error["msg"]) for error in invalid.errors())
        raise CaseActionRefused(
            CaseActionRefusalKind.INVALID_COMMENT, f"The comment cannot be kept: {problem}."
        ) from None
    with session_scope(ledger) as session:
        scene = _scene(session, case_id, by.name)
        _may_act(scene, by.name, "comment on", decided_too=True)
        session.add(_act(scene.case, CaseEventKind.COMMENTED, by.name, at, text=words))
    log.info("case.commented", case_id=case_id, operator=by.name, characters=len(words))
    return CaseEvent(kind=CaseEventKind.COMMENTED, at=at, operator=by.name, text=words)


def case_claim(ledger: Engine, case_id: str) -> CaseClaim:
    """Who holds the case now, and who decided it once it is decided; `CaseActionRefused` (unknown-case) if none."""
    with Session(ledger) as session:
        case = _case(session, case_id)
        held_by = holder(case, claimants_of(session, [case]))
        decision = session.get(DecisionRow, case_id)
    claim = _claim(case, held_by, case.claimed_at if held_by else None, changed=False)
    return claim.model_copy(update={"decided_by": decision.operator if decision else None})


def case_history(ledger: Engine, case_id: str) -> list[CaseEvent]:
    """Everything that happened to the case, oldest first: opened, claims, comments, escalations, refused decisions,
    the decision. `CaseActionRefused` (unknown-case) when there is no such case."""
    found = history_of_case(ledger, case_id)
    if found is None:
        raise _unknown(case_id)
    return found


def check_claim_for_decision(ledger: Engine, case_id: str, operator: Operator) -> None:
    """Refuse (held-by-another, naming the holder) a decision by an operator of the owner group on a case another
    operator holds. Everything else is for the workflow to judge, and to keep in the case's refused attempts: an
    unknown or decided case, an operator outside the group."""
    with Session(ledger) as session:
        case = session.get(CaseRow, case_id)
        if case is None:
            return
        actor = session.get(OperatorRow, operator.name)
        held_by = None if _first_approval_waits(session, [case_id]) else holder(case, claimants_of(session, [case]))
        refusal = _held_for_decision(case, actor, held_by)
    if refusal is not None:
        log.info("case.decision_held", case_id=case_id, operator=operator.name)
        raise refusal


def plan_decisions(ledger: Engine, body: BulkDecisionBody, operator: Operator) -> list[PlannedDecision]:
    """The request to send for each case of a bulk decision, in the order named, or the outcome a case already has:
    refused as unknown, or as held by another (`check_claim_for_decision`). `BulkDecisionProblem` when the cases are
    not all of one handoff (or not of `body.handoff`): then nothing is sent."""
    with Session(ledger) as session:
        rows = session.exec(select(CaseRow).where(col(CaseRow.id).in_(body.case_ids))).all()
        cases = {row.id: row for row in rows}
        claimants = claimants_of(session, rows)
        actor = session.get(OperatorRow, operator.name)
        second_approvals = _first_approval_waits(session, list(cases))
    _check_one_handoff(body, cases)
    planned = []
    for case_id in body.case_ids:
        case = cases.get(case_id)
        held_by = None if case is None or case_id in second_approvals else holder(case, claimants)
        refusal = _unknown(case_id) if case is None else _held_for_decision(case, actor, held_by)
        if refusal is not None:
            outcome = BulkOutcome(case_id=case_id, outcome="refused", kind=refusal.kind.value, detail=refusal.message)
            planned.append(PlannedDecision(case_id=case_id, refused=outcome))
            continue
        assert case is not None
        request = DecisionRequest(
            case_id=case_id,
            decision=body.decision,
            operator=operator.name,
            operator_groups=operator.groups,
            reason=body.reason,
        )
        planned.append(PlannedDecision(case_id=case_id, workflow_id=case.workflow_id, request=request))
    return planned


# -- the rules --------------------------------------------------------------------------------------------------------


def _scene(session: Session, case_id: str, operator: str) -> _Scene:
    case = _case(session, case_id)
    return _Scene(
        case=case,
        actor=session.get(OperatorRow, operator),
        holder=holder(case, claimants_of(session, [case])),
        decision=session.get(DecisionRow, case_id),
    )


def _case(session: Session, case_id: str) -> CaseRow:
    # populate_existing: a retry after a lost race must see the winner's row, not this session's copy.
    case = session.get(CaseRow, case_id, populate_existing=True)
    if case is None:
        raise _unknown(case_id)
    return case


def _may_act(scene: _Scene, operator: str, verb: str, *, decided_too: bool = False) -> None:
    """Refuse anyone but an operator of the group that owns the case now; and a decided case, unless `decided_too`."""
    case, actor = scene.case, scene.actor
    if actor is None or actor.role != Role.OPERATOR.value:
        what = "not in the ledger" if actor is None else Role(actor.role).article
        raise CaseActionRefused(
            CaseActionRefusalKind.NOT_AN_OPERATOR,
            f"Only an operator may {verb} a case; {operator!r} is {what}.",
        )
    if case.owner_group not in actor.groups:
        raise CaseActionRefused(
            CaseActionRefusalKind.NOT_OWNER,
            f"Operator {operator!r} ({', '.join(actor.groups) or 'no group'}) may not {verb} case {case.id}: it is "
            f"owned by {case.owner_group!r} now, and only its operators may.",
        )
    if case.status != CaseStatus.OPEN.value and not decided_too:
        decided = scene.decision
        by = (
            f" ({decided.decision} by {decided.operator} at {utc(decided.decided_at):%Y-%m-%d %H:%M:%S} UTC)"
            if decided
            else ""
        )
        raise CaseActionRefused(
            CaseActionRefusalKind.ALREADY_DECIDED,
            f"Case {case.id} is decided{by}: a decided case holds nobody, so nobody may {verb} it. A comment can "
            "still be added.",
        )


def _held(scene: _Scene, what: str) -> CaseActionRefused:
    case, held_by = scene.case, scene.holder
    since = f" since {utc(case.claimed_at):%Y-%m-%d %H:%M:%S} UTC" if case.claimed_at else ""
    return CaseActionRefused(
        CaseActionRefusalKind.HELD_BY_ANOTHER,
        f"Case {case.id} is held by {held_by}{since}: only {held_by} may {what}. Ask {held_by} to release it or to "
        "hand it to you.",
    )


def _held_for_decision(case: CaseRow, actor: OperatorRow | None, held_by: str | None) -> CaseActionRefused | None:
    """The claim check of a decision: only an operator of the owner group meets it (the workflow judges the rest)."""
    if actor is None or held_by is None or held_by == actor.name:
        return None
    if actor.role != Role.OPERATOR.value or case.owner_group not in actor.groups:
        return None
    since = f" since {utc(case.claimed_at):%Y-%m-%d %H:%M:%S} UTC" if case.claimed_at else ""
    return CaseActionRefused(
        CaseActionRefusalKind.HELD_BY_ANOTHER,
        f"Case {case.id} is held by {held_by}{since}: only {held_by} decides it while they hold it. Ask {held_by} "
        "to release it or to hand it to you; nothing was sent to the run.",
    )


def _first_approval_waits(session: Session, case_ids: list[str]) -> set[str]:
    """The cases whose four-eyes first approval waits for a second: one given since the case's latest escalation
    (an escalation starts the next group afresh)."""
    approved = session.exec(
        select(CaseEventRow.case_id, func.max(CaseEventRow.at))
        .where(col(CaseEventRow.case_id).in_(case_ids), CaseEventRow.kind == CaseEventKind.FIRST_APPROVAL.value)
        .group_by(col(CaseEventRow.case_id))
    ).all()
    if not approved:
        return set()
    escalated = dict(
        session.exec(
            select(EscalationRow.case_id, func.max(EscalationRow.at))
            .where(col(EscalationRow.case_id).in_(case_ids))
            .group_by(col(EscalationRow.case_id))
        ).all()
    )
    return {case_id for case_id, at in approved if case_id not in escalated or utc(at) >= utc(escalated[case_id])}


def _check_assignee(session: Session, case: CaseRow, to: str) -> None:
    assignee = session.get(OperatorRow, to)
    problem = None
    if assignee is None:
        known = session.exec(
            select(OperatorRow.name).where(OperatorRow.role == Role.OPERATOR.value).order_by(col(OperatorRow.name))
        ).all()
        problem = f"there is no operator named {to!r} (operators: {', '.join(known) or 'none'})"
    elif assignee.role != Role.OPERATOR.value:
        problem = f"{to} is {Role(assignee.role).article}, and only operators hold cases"
    elif case.owner_group not in assignee.groups:
        problem = f"{to} ({', '.join(assignee.groups)}) is not in {case.owner_group!r}, which owns the case now"
    if problem is not None:
        raise CaseActionRefused(
            CaseActionRefusalKind.BAD_ASSIGNEE, f"Case {case.id} cannot be handed to {to!r}: {problem}."
        )


def _check_one_handoff(body: BulkDecisionBody, cases: dict[str, CaseRow]) -> None:
    by_handoff: dict[str, list[str]] = {}
    for case_id in body.case_ids:
        if case_id in cases:
            by_handoff.setdefault(cases[case_id].handoff, []).append(case_id)
    listed = "; ".join(f"{name}: {', '.join(ids)}" for name, ids in sorted(by_handoff.items()))
    if body.handoff is not None and set(by_handoff) - {body.handoff}:
        raise BulkDecisionProblem(
            "wrong-handoff",
            f"Not every case is of {body.handoff!r} ({listed}); nothing was decided. Name only its cases.",
        )
    if len(by_handoff) > 1:
        raise BulkDecisionProblem(
            "mixed-handoffs",
            f"The cases are of {len(by_handoff)} handoffs ({listed}); nothing was decided. A bulk decision takes "
            "the cases of one handoff: send one per handoff.",
        )


# -- writing ----------------------------------------------------------------------------------------------------------


def _change_holder(session: Session, case: CaseRow, new_holder: str | None, at: datetime | None) -> bool:
    """Set the holder if the case is still as read (open, same group, same holder); False when another act won."""
    seen = col(CaseRow.claimed_by).is_(None) if case.claimed_by is None else col(CaseRow.claimed_by) == case.claimed_by
    changed = session.exec(
        update(CaseRow)
        .where(
            col(CaseRow.id) == case.id,
            col(CaseRow.status) == CaseStatus.OPEN.value,
            col(CaseRow.owner_group) == case.owner_group,
            seen,
        )
        .values(claimed_by=new_holder, claimed_at=at)
        .execution_options(synchronize_session=False)
    )
    return changed.rowcount == 1


def _act(
    case: CaseRow,
    kind: CaseEventKind,
    operator: str,
    at: datetime,
    *,
    to_operator: str | None = None,
    text: str | None = None,
) -> CaseEventRow:
    return CaseEventRow(
        case_id=case.id,
        workflow_id=case.workflow_id,
        kind=kind.value,
        operator=operator,
        to_operator=to_operator,
        text=text,
        at=at,
    )


def _claim(case: CaseRow, held_by: str | None, at: datetime | None, *, changed: bool = True) -> CaseClaim:
    return CaseClaim(
        case_id=case.id,
        handoff=case.handoff,
        owner_group=case.owner_group,
        status=CaseStatus(case.status),
        claimed_by=held_by,
        claimed_at=utc(at) if at else None,
        changed=changed,
    )


def _with_retries(ledger: Engine, attempt: Callable[[Session], T | None]) -> T:
    """Run `attempt` in a transaction of its own until it answers (None: it lost a race, look again)."""
    for _ in range(HOLDER_ATTEMPTS):
        with session_scope(ledger) as session:
            answer = attempt(session)
        if answer is not None:
            return answer
    raise CaseActionRefused(
        CaseActionRefusalKind.HELD_BY_ANOTHER,
        f"The case changed hands {HOLDER_ATTEMPTS} times while this was tried; read it again, then retry.",
    )


def _unknown(case_id: str) -> CaseActionRefused:
    return CaseActionRefused(CaseActionRefusalKind.UNKNOWN_CASE, f"No case {case_id!r} in the ledger.")
