"""The drift check workflow: what a contract's drift check schedule (or `handoff drift check`) starts.

Two activities, read then act: `find_drift` compares the handoff's recently delivered copies with their source of
truth, `open_drift_cases` starts a drift run (a drift case for the exception owner) per finding. Finding is only
reading, so a retried check finds the same; opening is keyed by the drift run's workflow id, so a retried one opens
nothing twice. Deterministic, no I/O.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from handoff.schemas.drift import (
        DRIFT_CHECK_WORKFLOW,
        FIND_DRIFT,
        OPEN_DRIFT_CASES,
        DriftCheckInput,
        DriftCheckRequest,
        DriftCheckResult,
        DriftFindings,
    )

FIND_TIMEOUT = timedelta(minutes=30)
"""Up to `limit` runs, each a read of the source and of every target: slow systems make a long check."""
FIND_HEARTBEAT = timedelta(minutes=2)
OPEN_TIMEOUT = timedelta(minutes=5)
DRIFT_RETRY = RetryPolicy(
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=5,
    # Retrying cannot give a handoff a drift check it does not declare, nor the app a name it does not register.
    non_retryable_error_types=["UnknownName", "NoDriftCheck"],
)


@workflow.defn(name=DRIFT_CHECK_WORKFLOW, sandboxed=True)
class DriftCheckWorkflow:
    """One drift check of a handoff."""

    @workflow.run
    async def run(self, check: DriftCheckInput) -> DriftCheckResult:
        found: DriftFindings = await workflow.execute_activity(
            FIND_DRIFT,
            DriftCheckRequest(handoff=check.handoff, checked_at=workflow.now()),
            result_type=DriftFindings,
            start_to_close_timeout=FIND_TIMEOUT,
            heartbeat_timeout=FIND_HEARTBEAT,
            retry_policy=DRIFT_RETRY,
        )
        if not found.findings:
            return DriftCheckResult(**found.model_dump())
        opened: DriftCheckResult = await workflow.execute_activity(
            OPEN_DRIFT_CASES,
            found,
            result_type=DriftCheckResult,
            start_to_close_timeout=OPEN_TIMEOUT,
            retry_policy=DRIFT_RETRY,
        )
        return opened
