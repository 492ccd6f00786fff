"""The firing workflow: what a Temporal Schedule starts each time a contract's schedule fires.

A Schedule can only start a workflow, and the handoff's own run must start from a payload checked at the edge, with
the workflow id its dedupe key gives. So the schedule starts this small workflow; its one activity calls the app's
scheduled function and starts each run through `handoff.workers.trigger`, exactly as an event does. A retried
activity finds the runs it already started (the same payload, the same id). Deterministic, no I/O.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():  # the models, built once per process, not once per firing
    from handoff.schemas.schedules import FIRE_SCHEDULE, SCHEDULE_WORKFLOW, FireRequest, ScheduleFired, ScheduleFiring

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
"""Set by Temporal on every workflow a schedule starts: the time the firing was due."""

FIRE_TIMEOUT = timedelta(minutes=5)
FIRE_RETRY = RetryPolicy(
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=10,
    # Retrying cannot fix a payload the edge refuses, nor a function the app does not register.
    non_retryable_error_types=["PayloadInvalid", "UnknownName", "UnknownEvent"],
)


@workflow.defn(name=SCHEDULE_WORKFLOW, sandboxed=True)
class ScheduleWorkflow:
    """One firing of a handoff's schedule."""

    @workflow.run
    async def run(self, firing: ScheduleFiring) -> ScheduleFired:
        fired_at = workflow.info().typed_search_attributes.get(SCHEDULED_START) or workflow.now()
        fired: ScheduleFired = await workflow.execute_activity(
            FIRE_SCHEDULE,
            FireRequest(handoff=firing.handoff, source=firing.source, fired_at=fired_at),
            result_type=ScheduleFired,
            start_to_close_timeout=FIRE_TIMEOUT,
            retry_policy=FIRE_RETRY,
        )
        return fired
