"""The exception budget at run time: the check a run makes before delivery, and the holds it may meet.

A contract's `ExceptionPolicy.budget` says how many of a handoff's runs may open a case over a rolling window. Before
delivering, a run of such a handoff asks the ledger (`check_budget`): go, held (a hold of the handoff is active, or
this run's figures just started one), or rejected (the operator rejected the runs of its hold). A hold is the audit
record too: who resumed or rejected it, when and why. The CLI (`handoff budget`), the API (`GET /budget`) and the
inbox show the same `Hold` models.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from handoff.schemas.case_history import trimmed_not_blank
from handoff.schemas.contract import ExceptionBudget

CHECK_BUDGET = "check_budget"
"""Activity: may this run deliver, given its handoff's budget and holds?"""
NOTIFY_BUDGET_HOLD = "notify_budget_hold"
"""Activity: tell the owner group that the handoff is held; once per hold and notifier."""
BUDGET_RELEASED = "budget-released"
"""Signal to a held run: ask the ledger again. It carries nothing, so a forged one changes nothing."""

ReasonText = Annotated[str, StringConstraints(min_length=1, max_length=2000), AfterValidator(trimmed_not_blank)]


class HoldState(StrEnum):
    """Where a hold is: active, or decided by an operator."""

    HELD = "held"
    RESUMED = "resumed"
    """The held runs deliver; the budget counts again from this moment."""
    REJECTED = "rejected"
    """The held runs end rejected; the budget counts again from this moment."""


class Verdict(StrEnum):
    """The budget's answer to one run."""

    GO = "go"
    HELD = "held"
    REJECTED = "rejected"


class BudgetFigures(BaseModel):
    """The figures of one handoff over its window: what tripped a hold, or where the handoff stands now."""

    model_config = ConfigDict(frozen=True)

    runs: int = Field(ge=0, description="Runs received in the window (since the last resume or rejection).")
    runs_with_case: int = Field(ge=0, description="Of those, runs that opened an exception case.")
    window_seconds: float = Field(gt=0)

    @property
    def rate(self) -> float:
        """The share of runs that opened a case; 0 without runs."""
        return self.runs_with_case / self.runs if self.runs else 0.0


class Hold(BaseModel):
    """A handoff held because its runs opened too many cases: its figures then, and the operator's decision."""

    model_config = ConfigDict(frozen=True)

    id: int
    handoff: str
    state: HoldState
    held_at: datetime
    runs: int
    runs_with_case: int
    case_rate: float
    window_seconds: float
    owner_group: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    held_runs: int = Field(default=0, description="Runs of the handoff waiting in stage held now.")


class BudgetCheck(BaseModel):
    """`check_budget`'s input: a run about to deliver, and the hold it waits on (None on its first ask)."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    handoff: str
    budget: ExceptionBudget
    owner_group: str | None = None
    hold_id: int | None = None
    at: datetime


class BudgetAnswer(BaseModel):
    """`check_budget`'s answer: go, or held on (or rejected with) `hold`."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    hold: Hold | None = None


class HoldDecisionBody(BaseModel):
    """`POST /handoffs/{name}/resume` and `/reject-held`: why. Who decides comes from the token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: ReasonText = Field(description="Why: kept with the hold, in the audit trail. Must not be empty.")


class HoldDecided(BaseModel):
    """What resuming or rejecting answers: the hold as decided, and the held runs told to ask again."""

    model_config = ConfigDict(frozen=True)

    hold: Hold
    signalled: list[str] = Field(default_factory=list, description="Workflow ids of the held runs told.")


class HoldNotice(BaseModel):
    """`notify_budget_hold`'s input: the hold the run met, for its owner group to hear about (once per hold)."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    hold: Hold
