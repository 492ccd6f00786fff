"""The firing's activity: a schedule's payloads become runs.

The activity holds no logic of its own: it hands the request, its client and task queue to the starter it was built
with (`handoff.workers.schedules.fire`, bound to the app), so the payload meets the same edge as any event's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.client import Client

from handoff.schemas.schedules import FIRE_SCHEDULE, FireRequest, ScheduleFired

Starter = Callable[[Client, FireRequest, str], Awaitable[ScheduleFired]]
"""(client, request, task queue) -> the runs started: what turns a firing into runs."""


class ScheduleActivities:
    """Starts the runs of a schedule's firing."""

    def __init__(self, start: Starter) -> None:
        self._start = start

    @activity.defn(name=FIRE_SCHEDULE)
    async def fire_schedule(self, request: FireRequest) -> ScheduleFired:
        return await self._start(activity.client(), request, activity.info().task_queue)
