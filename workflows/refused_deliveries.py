"""A delivery the target system did not take becomes an exception case, like bad data found by a rule.

Two ways a write ends without a record: the system refuses it (a value it cannot store, a field it does not know),
or it never answers, attempt after attempt, until the target's bound (`SyncTarget.attempts`) is reached. Either
way the run does not fail and does not retry forever: the contract's exception owner reads the system's reason in a
case, and corrects the field, retries, or rejects the run. The case's violations say which system, which field and
why, in the same shape a rule's violations have, so the inbox, the CLI and the ledger show them the same way.

Pure functions: the workflow calls them with what its delivery activities answered.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.exceptions import ActivityError

from handoff.schemas.activities import DeliveryRefusal
from handoff.schemas.cases import ExceptionCase, Violation
from handoff.schemas.contract import DecisionKind, ExceptionPolicy

DELIVERY = "delivery"
"""The kind of a violation that a target system's refusal produced (rules have `required`, `min`, ...)."""

NO_ANSWER = "NoAnswer"
"""The error of a refusal that is really silence: every attempt failed without the system refusing the data."""


def unanswered(system: str, attempts: int, error: ActivityError) -> DeliveryRefusal:
    """The refusal delivery reports when the system never took the record: its last error, after every attempt."""
    last = error.cause or error
    return DeliveryRefusal(
        system=system,
        reason=f"The {system} system did not take the record after {attempts} attempt(s); the last error: {last}. "
        f"Retry once it is back, or reject the run.",
        error=NO_ANSWER,
    )


def delivery_violations(refusals: Sequence[DeliveryRefusal]) -> list[Violation]:
    """One violation per refusal: the field it names (or the whole record), the value, the system's reason."""
    return [
        Violation(
            rule=f"{refusal.system} accepts {refusal.target_field}"
            if refusal.target_field
            else f"{refusal.system} takes the record",
            kind=DELIVERY,
            field=refusal.field or "",
            value=refusal.value,
            reason=refusal.reason,
        )
        for refusal in refusals
    ]


def is_delivery_case(case: ExceptionCase) -> bool:
    """Whether the case was opened by a refused delivery rather than by the contract's rules."""
    return bool(case.violations) and all(violation.kind == DELIVERY for violation in case.violations)


def end_of_chain_decision(policy: ExceptionPolicy, *, delivery: bool) -> tuple[DecisionKind, str]:
    """The decision when no group decided in time, and why.

    For a refused delivery, approving or retrying unchanged would send the same record to the system that refused
    it, and open the same case again, SLA after SLA: the run is rejected instead, and the reason says so.
    """
    assert policy.on_timeout is not None
    decision = policy.on_timeout
    chain = " then ".join(policy.chain)
    if delivery and decision in (DecisionKind.APPROVE, DecisionKind.RETRY):
        return DecisionKind.REJECT, (
            f"No decision by {chain} within the SLA on a delivery the target refused: sending it again unchanged "
            f"would be refused again, so the run is rejected (the contract's end-of-chain decision, "
            f"{decision.value}, applies to rule violations)."
        )
    return decision, f"No decision by {chain} within the SLA: the contract's end-of-chain decision is {decision.value}."
