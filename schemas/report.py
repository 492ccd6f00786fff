"""The operations report: what each handoff did, measured from the ledger, against the gain its contract promised.

The report answers question 6 of a contract ("which measurable gain is expected?") with the figures: every measure
is one where lower is better, so a gain is met when the measured value is at or below the target.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from handoff.schemas.contract import Measure
from handoff.schemas.drift import SystemDrift


class Percentiles(BaseModel):
    """Nearest-rank percentiles of a set of durations, in seconds; None when there is nothing to measure."""

    count: int = Field(ge=0)
    p50: float | None = None
    p95: float | None = None


class GroupLatency(BaseModel):
    """How long one operator group took to decide its cases: case opened -> decision, operator decisions only."""

    group: str
    seconds: Percentiles


class GainVerdict(StrEnum):
    MET = "met"
    NOT_MET = "not met"
    NO_DATA = "no data"
    """Nothing was measured yet (no runs, or no delivered run for a cycle time)."""
    NO_TARGET = "no target"
    """The contract declares no target to compare with (the readiness gate flags this)."""


class GainCheck(BaseModel):
    """The contract's declared gain set against the measured value."""

    metric: str
    measure: Measure
    unit: str
    baseline: float
    target: float | None
    actual: float | None
    verdict: GainVerdict


class HandoffFigures(BaseModel):
    """A handoff's figures over a set of its runs: all of them (`HandoffReport`) or one contract version's."""

    handoff: str
    runs: int
    delivered: int
    rejected: int
    failed: int
    open_cases: int
    exception_rate_pct: float | None = Field(description="% of runs that opened at least one case; None: no runs.")
    cycle_time: Percentiles = Field(description="Event received -> delivered, over delivered runs.")
    decision_latency: list[GroupLatency] = Field(default_factory=list)
    escalations: int
    manual_touches_per_run: float | None = Field(description="Operator decisions per run; None: no runs.")
    gain: GainCheck | None = Field(default=None, description="None when the handoff is not in the catalog.")


class VersionReport(HandoffFigures):
    """One contract version's share of a handoff: the runs stamped with that version, against that version's gain
    (the handoff's newest one when the app no longer has the version)."""

    contract_version: int


class HandoffReport(HandoffFigures):
    """One handoff's figures over every run in the ledger."""

    versions: list[VersionReport] = Field(
        default_factory=list,
        description="The same figures per contract version, oldest first, when asked for (`by_version`); "
        "a version is listed once the ledger has a run of it.",
    )
    drift: list[SystemDrift] = Field(
        default_factory=list,
        description="Drift cases (copies that no longer matched their source) per system named, by system; drift "
        "runs are not in the figures above.",
    )


class Report(BaseModel):
    """The report for every handoff of the catalog, and any other handoff the ledger has runs of."""

    generated_at: datetime
    handoffs: list[HandoffReport]
