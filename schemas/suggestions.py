"""Suggested rule changes: rules operators keep approving away, turned into the contract change that would stop it.

A rule approved as is in most of the cases that broke it (the diagnosis's `overridden-rule` sign) is not the rule
people apply. The approved values often say what the rule should be: parties of 13 and 14 approved under "at most
12" ask for "at most 14". A `Suggestion` carries that evidence, the rule as it would be written in the next contract
version, and what the backtest says the change would have done to the runs already received. `SuggestionReport` is
what `handoff suggest --json` prints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from handoff.schemas.backtest import HandoffBacktest
from handoff.schemas.diagnosis import Thresholds
from handoff.schemas.rules import Rule


class Evidence(BaseModel):
    """What operators did with one rule's violations in the window."""

    decided: int = Field(ge=1, description="Operator-decided cases that broke the rule.")
    approved: int = Field(ge=0, description="Of them, approved as they were (the rule overridden).")
    values: list[Any] = Field(
        default_factory=list, description="The distinct values of the approved violations, smallest first."
    )
    summary: str = Field(description='The evidence in one phrase: "overridden 9 of 10 times, values 13-14".')
    examples: list[str] = Field(default_factory=list, description="Ids of approved cases (a few).")


class Measured(BaseModel):
    """The proposed version backtested against the runs received in the window, compared with the current one."""

    compared: int = Field(ge=0, description="Runs past their first validation, judged by both versions.")
    fewer_cases: list[str] = Field(
        default_factory=list, description="Runs the current rules hold in a case and the proposed ones would not."
    )
    new_cases: list[str] = Field(
        default_factory=list, description="Runs the proposed rules would hold in a case and the current ones do not."
    )
    exception_rate_current_pct: float | None = Field(description="Runs the current rules hold, as a % of those judged.")
    exception_rate_proposed_pct: float | None = Field(description="The same under the proposed rules.")
    backtest: HandoffBacktest = Field(
        description="`handoff backtest` of the proposed version: what it would have changed against the ledger."
    )


class Suggestion(BaseModel):
    """One overridden rule: its evidence and, where the approved values say it, the change and its effect."""

    handoff: str
    rule: str = Field(description="The rule's label, as violations name it.")
    kind: str | None = Field(description="The rule's kind (max, one_of...); None: the current version lacks the rule.")
    evidence: Evidence
    current: Rule | None = Field(default=None, description="The rule as the newest version has it.")
    proposed: Rule | None = Field(default=None, description="The rule as the next version would have it; None: none.")
    version: int | None = Field(default=None, description="The version the change would be: the newest plus one.")
    change: str | None = Field(default=None, description="The change as Python the developer would commit.")
    note: str | None = Field(default=None, description="Why there is no proposed rule, when there is none.")
    measured: Measured | None = Field(default=None, description="The backtest of the proposed version.")


class HandoffSuggestions(BaseModel):
    """The suggestions for one handoff's newest version."""

    handoff: str
    version: int
    decided: int = Field(ge=0, description="Cases of the window decided by an operator.")
    runs: int = Field(ge=0, description="Runs received in the window, which each proposal is backtested on.")
    suggestions: list[Suggestion] = Field(default_factory=list)


class SuggestionReport(BaseModel):
    """Every handoff asked for, over the cases opened and the runs received since `since`."""

    generated_at: datetime
    since: datetime
    thresholds: Thresholds
    handoffs: list[HandoffSuggestions]
