"""The report over time: each handoff's figures per day (or per week) of a window, and what its cases and decisions
were about, for the charts of the inbox's report page and `handoff report --html`.

Every figure is the one `schemas.report` defines, over the runs received in one bucket of the window: the exception
rate is the share of those runs that opened a case, the cycle time their p50 from event to delivery.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from handoff.schemas.contract import Measure
from handoff.schemas.report import GainCheck


class Bucket(StrEnum):
    """How long one point of a series covers."""

    DAY = "day"
    WEEK = "week"
    """Monday to Sunday; for windows too long for a readable point a day."""


class SeriesPoint(BaseModel):
    """One bucket's figures over the runs received in it; None where there is nothing to measure."""

    start: date = Field(description="The bucket's first day (UTC).")
    runs: int = Field(ge=0)
    delivered: int = Field(default=0, ge=0)
    runs_with_cases: int = Field(default=0, ge=0)
    exception_rate_pct: float | None = Field(default=None, description="% of the bucket's runs that opened a case.")
    cycle_time_p50: float | None = Field(default=None, description="Seconds, over the bucket's delivered runs.")


class RuleCount(BaseModel):
    """How many cases opened in the window broke one rule (a case breaking two rules counts for each)."""

    rule: str
    cases: int = Field(ge=0)


class DecisionCount(BaseModel):
    """How many cases were decided one way in the window, and how many of those the contract decided at its SLA."""

    kind: str
    decisions: int = Field(ge=0)
    by_timeout: int = Field(default=0, ge=0)


class HandoffSeries(BaseModel):
    """One handoff's window: its points in time order, its cases by rule and decisions by kind, most first."""

    handoff: str
    runs: int = Field(ge=0)
    exception_rate_pct: float | None = None
    cycle_time_p50: float | None = None
    gain: GainCheck | None = Field(default=None, description="The declared gain against the window's figure.")
    points: list[SeriesPoint] = Field(default_factory=list)
    cases_by_rule: list[RuleCount] = Field(default_factory=list)
    decisions_by_kind: list[DecisionCount] = Field(default_factory=list)

    def gain_on(self, measure: Measure) -> GainCheck | None:
        """The gain when it is measured by `measure`: the chart of that measure carries its baseline and target."""
        return self.gain if self.gain is not None and self.gain.measure is measure else None


class ReportSeries(BaseModel):
    """Every handoff of the catalog (then any other the window has runs of) over one window."""

    generated_at: datetime
    since: datetime
    bucket: Bucket
    handoffs: list[HandoffSeries]
