"""Ordered delivery's compensation: when a target does not take the record, undo what the targets before it took.

A contract that orders its targets (`Sync(ordered=True)`) is written one target at a time. When one refuses the
record, or never answers, the writes this delivery made are undone last first, each through the adapter method its
`SyncTarget(undo=...)` names, by the `undo_delivery` activity: once each, since the adapter's undo is idempotent and
the ledger marks what was undone. A target without `undo` keeps its write, and so does one whose undo fails every
attempt; the refusal's reason, which the exception case shows, says what was undone and what stayed.

Runs in the workflow: deterministic, every side effect an activity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from handoff.schemas.activities import UNDO_DELIVERY, DeliveryRefusal, UndoRequest, UndoResult
    from handoff.schemas.contract import SyncTarget
    from handoff.schemas.runs import Delivery

UNDO_TIMEOUT = timedelta(minutes=2)
UNDO_HEARTBEAT = timedelta(seconds=10)


@dataclass
class Compensation:
    """What one round of undoing did: the systems undone (in the order undone) and those whose write stays, why."""

    undone: list[str] = field(default_factory=list)
    stayed: dict[str, str] = field(default_factory=dict)
    """System -> why its write stays: it declares no undo, or its undo failed."""


async def undo_in_reverse(
    written: Sequence[Delivery],
    targets: Mapping[str, SyncTarget],
    *,
    written_before: Sequence[str] = (),
    workflow_id: str,
    handoff: str,
) -> Compensation:
    """Undo `written` (this delivery's writes, in the order made) last first, one at a time: a later write may
    depend on an earlier one (an invoice on its customer), so it goes first. `written_before`: the systems an earlier
    delivery of the run wrote and could not undo; they stay, and the case says so again."""
    compensation = Compensation(stayed={system: "written before, not undone" for system in written_before})
    for delivery in reversed(written):
        target = targets[delivery.system]
        if target.undo is None:
            compensation.stayed[delivery.system] = "it declares no undo"
            continue
        problem = await _undo(target, delivery, workflow_id=workflow_id, handoff=handoff)
        if problem is None:
            compensation.undone.append(delivery.system)
        else:
            compensation.stayed[delivery.system] = problem
    return compensation


async def _undo(target: SyncTarget, delivery: Delivery, *, workflow_id: str, handoff: str) -> str | None:
    """Undo one write; why it stays, or None once it is undone."""
    assert target.undo is not None
    request = UndoRequest(
        workflow_id=workflow_id,
        handoff=handoff,
        system=delivery.system,
        record_key=delivery.record_key,
        undo=target.undo,
    )
    try:
        result = await workflow.execute_activity(
            UNDO_DELIVERY,
            request,
            result_type=UndoResult,
            start_to_close_timeout=UNDO_TIMEOUT,
            heartbeat_timeout=UNDO_HEARTBEAT,
            retry_policy=undo_retry(target.attempts),
        )
    except ActivityError as error:
        return f"its undo failed after {target.attempts} attempt(s): {error.cause or error}"
    return None if result.undone else result.problem or "its undo did not happen"


def undo_retry(attempts: int) -> RetryPolicy:
    """An undo the system does not answer is tried as often as its write (the target's `attempts`), waiting longer
    between tries than a write does: a write left in place is worse than a slow undo."""
    return RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=attempts)


def with_compensation(refusal: DeliveryRefusal, compensation: Compensation) -> DeliveryRefusal:
    """The refusal, its reason saying what was undone and which writes stayed: what the case's owner reads."""
    said = [refusal.reason.rstrip(". ")]
    if compensation.undone:
        said.append(f"undone: {', '.join(compensation.undone)}")
    if compensation.stayed:
        said.append("still written: " + ", ".join(f"{system} ({why})" for system, why in compensation.stayed.items()))
    if len(said) == 1:
        return refusal
    return refusal.model_copy(update={"reason": "; ".join(said)})
