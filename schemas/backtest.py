"""`handoff backtest`: the recorded runs of a handoff judged again by its current rules, and what would differ.

A rule change is a new contract version, and a new version only judges new events. Before shipping one, an owner
wants to know what it would have done to the events already received: which runs would have opened a case and did
not, which opened one and would not now, which rules would fire, and how the exception rate would move.
`RecordedRun` is what the ledger gives the comparison; `Backtest` is what `handoff backtest --json` prints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from handoff.schemas.runs import FieldError, Stage


class RecordedRun(BaseModel):
    """One run as the ledger recorded it: the payload it received, and what its first validation found."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    handoff: str
    event: str
    contract_version: int
    stage: Stage
    payload: dict[str, Any] = Field(description="The payload as received (before any correction).")
    received_at: datetime
    cases: int = Field(ge=0, description="Cases the run opened, those after a correction or retry included.")
    first_case_rules: tuple[str, ...] = Field(
        default=(),
        description="The rules the run's first case broke: the one case judged on the payload as received.",
    )

    @property
    def judged(self) -> bool:
        """Whether the run got past its first validation; a run still validating has no verdict to compare yet."""
        return self.cases > 0 or self.stage not in (Stage.RECEIVED, Stage.VALIDATING)


class RuleCount(BaseModel):
    """How many runs one rule, or one field, would stop under the current rules."""

    name: str = Field(description="A rule's label (`reservation.party_size <= 14`) or a field path.")
    runs: int = Field(ge=1)


class ChangedRun(BaseModel):
    """A run whose outcome the current rules would change: no case then and one now, or the other way round."""

    workflow_id: str
    before: tuple[str, ...] = Field(description="The rules its first recorded case broke (none: it opened no case).")
    after: tuple[str, ...] = Field(description="The rules the current version would find broken (none: no case).")


class RefusedRun(BaseModel):
    """A run whose payload no longer fits the trigger's model: the edge would refuse it, and nothing would start."""

    workflow_id: str
    errors: list[FieldError]


class HandoffBacktest(BaseModel):
    """One handoff's recorded runs against the newest version of its contract."""

    handoff: str
    version: int = Field(description="The contract version the runs were judged by: the app's newest.")
    content_hash: str
    runs: int = Field(ge=0, description="Runs received in the window.")
    still_validating: int = Field(
        ge=0, description="Runs not yet past their first validation when the ledger was read: not compared."
    )
    opened_before: int = Field(ge=0, description="Runs compared that opened at least one case.")
    exception_rate_before_pct: float | None = Field(
        description="opened_before as a % of the runs compared; None: none to compare."
    )
    refused: list[RefusedRun] = Field(
        default_factory=list, description="Runs whose payload the edge would refuse now; they count in no rate after."
    )
    would_open: int = Field(ge=0, description="Runs the current rules would hold in a case.")
    exception_rate_after_pct: float | None = Field(
        description="would_open as a % of the runs compared that the edge would accept; None: none."
    )
    newly_opened: list[ChangedRun] = Field(
        default_factory=list, description="Runs that opened no case and would open one now."
    )
    no_longer_opened: list[ChangedRun] = Field(
        default_factory=list, description="Runs that opened a case and would not now."
    )
    by_rule: list[RuleCount] = Field(
        default_factory=list, description="Of the runs that would open a case: how many each rule would stop."
    )
    by_field: list[RuleCount] = Field(
        default_factory=list,
        description="Of the runs that would open a case: how many have a broken rule on each field.",
    )


class Backtest(BaseModel):
    """Every handoff backtested, with how the look-ups were answered."""

    since: datetime = Field(description="Runs received at or after this moment (UTC) were judged.")
    generated_at: datetime
    lookups_rerun: bool = Field(
        description="True: look-ups were asked of the systems again. False: each counts as it did in the recorded "
        "run (failed only where the run's first case names its rule)."
    )
    handoffs: list[HandoffBacktest]
