"""What a schedule's firing carries: the input of the firing workflow, its activity's request, and what it started.

A contract's `Schedule` (in `schemas.contract`) becomes a Temporal Schedule whose action starts the firing workflow
`SCHEDULE_WORKFLOW` with a `ScheduleFiring`; its one activity, `FIRE_SCHEDULE`, asks the app's scheduled function for
the payloads and starts each run through the edge, as an event would.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from handoff.schemas.runs import TriggerAccepted

SCHEDULE_WORKFLOW = "HandoffSchedule"
"""The firing workflow's type: upper case, so no contract (lower case, by its name's pattern) can be called that."""
FIRE_SCHEDULE = "fire_schedule"
"""The firing's activity: the scheduled function's payloads, each checked and started as a run."""


class ScheduleFiring(BaseModel):
    """The schedule's action: which handoff to start, from which registered function."""

    model_config = ConfigDict(frozen=True)

    handoff: str
    source: str


class FireRequest(BaseModel):
    """One firing, as the activity gets it: `fired_at` is the time it was scheduled for (not when it ran)."""

    model_config = ConfigDict(frozen=True)

    handoff: str
    source: str
    fired_at: datetime


class ScheduleFired(BaseModel):
    """The runs one firing started (or found already started by an earlier attempt of the same firing)."""

    runs: list[TriggerAccepted] = Field(default_factory=list)
