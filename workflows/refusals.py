"""Who may decide what, and when: the rules a decision must pass before a run takes it.

Pure functions over the run's cases and the contract, so the workflow's decision handlers (Update and signal) and the
tests share one judge. The judge is given the operator's groups: the ledger's, as the run's authorisation found them
(never the ones a request claims), or, for a decision replayed from before decisions were authorised, the claimed
ones it was judged on then. A refusal says why in words the operator can act on, and its kind lets the API answer
with the right status code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from handoff.schemas.cases import DecisionRequest, ExceptionCase, Refusal, RefusalKind
from handoff.schemas.contract import DecisionKind, HandoffContract
from handoff.schemas.drift import is_drift_case_violations
from handoff.schemas.paths import patched
from handoff.workflows.readiness.payload import shape_of


def refusal_for(
    request: DecisionRequest,
    cases: Sequence[ExceptionCase],
    contract: HandoffContract,
    payload: dict[str, Any],
    workflow_id: str,
    *,
    operator_groups: Sequence[str],
) -> Refusal | None:
    """Why `request`, from an operator of `operator_groups`, cannot be taken on this run now, or None when it can."""
    case = next((c for c in cases if c.id == request.case_id), None)
    if case is None:
        known = ", ".join(c.id for c in cases) or "none"
        return Refusal(
            kind=RefusalKind.UNKNOWN_CASE,
            message=f"Unknown case {request.case_id!r}: run {workflow_id} has no such case (its cases: {known}).",
        )
    if case.decision is not None:
        by = f"{case.decision.decision.value} by {case.decision.operator}"
        return Refusal(
            kind=RefusalKind.ALREADY_DECIDED,
            message=f"Case {case.id} was already decided ({by}); a case is decided once.",
        )
    if is_drift_case_violations(case.violations) and request.decision not in DRIFT_DECISIONS:
        return Refusal(
            kind=RefusalKind.NOT_ALLOWED,
            message=f"Case {case.id} is a drift case: approve it once the copies are right again (or the difference "
            f"is accepted), or reject it to dismiss it; '{request.decision.value}' has nothing to deliver.",
        )
    if request.decision not in case.allowed:
        allowed = ", ".join(d.value for d in case.allowed)
        return Refusal(
            kind=RefusalKind.NOT_ALLOWED,
            message=f"The {contract.name} contract does not allow '{request.decision.value}' (allowed: {allowed}).",
        )
    if case.owner_group not in operator_groups:
        groups = ", ".join(operator_groups) or "no group"
        return Refusal(
            kind=RefusalKind.NOT_OWNER,
            message=f"Operator {request.operator!r} ({groups}) may not decide case {case.id}: "
            f"it is owned by {case.owner_group!r} now.",
        )
    second = second_approval_problem(request, case)
    if second is not None:
        return second
    problem = correction_problem(request, contract, payload)
    if problem is not None:
        return Refusal(kind=RefusalKind.INVALID_CORRECTION, message=problem)
    return None


DRIFT_DECISIONS = frozenset({DecisionKind.APPROVE, DecisionKind.REJECT})
"""A drift case is resolved or dismissed: there is no payload to correct or validate again."""


def second_approval_problem(request: DecisionRequest, case: ExceptionCase) -> Refusal | None:
    """Four eyes: with a first approval waiting, an approval or a correction must come from another operator and
    agree with it. A rejection is never held back: one operator may always stop a run."""
    first = case.first_approval
    if first is None or request.decision is DecisionKind.REJECT:
        return None
    if request.operator == first.operator:
        return Refusal(
            kind=RefusalKind.SAME_APPROVER,
            message=f"Case {case.id} needs four eyes: {first.operator!r} decided {first.decision.value} first, so "
            f"another operator of {case.owner_group!r} must agree.",
        )
    if (request.decision, request.patch) != (first.decision, first.patch):
        values = f" setting {first.patch}" if first.patch else ""
        return Refusal(
            kind=RefusalKind.DISAGREES,
            message=f"Case {case.id} waits for a second operator to agree with {first.operator!r}: "
            f"{first.decision.value}{values}. Send the same decision to agree, or reject.",
        )
    return None


def correction_problem(request: DecisionRequest, contract: HandoffContract, payload: dict[str, Any]) -> str | None:
    """What is wrong with the request's field changes: only 'correct' has them, and they must fit the payload."""
    if request.decision is not DecisionKind.CORRECT:
        if request.patch:
            return f"Only 'correct' changes fields; '{request.decision.value}' takes no field values."
        return None
    if not request.patch:
        return "A correction needs at least one field to set, e.g. reservation.party_size=4."
    assert contract.trigger is not None
    model = contract.trigger.payload
    shape = shape_of(model)
    for path in request.patch:
        if not shape.has(path):
            return f"Cannot correct {path!r}: the {contract.name} payload has no such field."
    try:
        model.model_validate(patched(payload, request.patch))
    except ValidationError as error:
        return f"The correction does not fit the payload: {describe_errors(error)}."
    return None


def describe_errors(error: ValidationError) -> str:
    """pydantic's errors as `entity.field: message`, joined."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors(include_url=False))
