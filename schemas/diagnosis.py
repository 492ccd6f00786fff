"""The diagnosis: is the process behind each handoff clear enough to deserve automation, or must it be diagnosed
first?

Integration connects systems; it does not settle a process that teams disagree on, a record nobody owns, exceptions
resolved by whoever is asked, a rule nobody decides, or an owner who does not answer in time. Each of those leaves
traces in the ledger, and each trace found is a `WarningSign` with its counts and example cases. A handoff with no
sign is one to integrate; any sign says to diagnose first. The verdict is information, not a gate.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Verdict(StrEnum):
    INTEGRATE = "integrate"
    """No warning sign: the process is clear enough; automate and synchronise it."""
    DIAGNOSE_FIRST = "diagnose-first"
    """At least one warning sign: settle the process before connecting more to it."""


class Theme(StrEnum):
    """The five ways a process shows it is not ready to be integrated; each sign belongs to one."""

    TEAMS_DISAGREE = "teams disagree on the process"
    NO_SOURCE_OF_TRUTH = "no clear source of truth"
    INFORMAL_KNOWLEDGE = "exceptions depend on informal knowledge"
    AUTOMATION_BEFORE_RULE = "automation before the rule"
    GOVERNANCE = "governance, not connectivity"


class SignKind(StrEnum):
    """What was found, precisely enough to count."""

    SPLIT_DECISION = "split-decision"
    """One violation (rule, field, similar value) decided in different ways by different operators."""
    FOREIGN_CORRECTION = "foreign-correction"
    """Corrections rewrote fields of an entity owned by a system other than the one that sent the event."""
    OVERRIDDEN_RULE = "overridden-rule"
    """A rule approved as is in most of the decided cases that broke it."""
    TERSE_REASONS = "terse-reasons"
    """Most decisions give a reason of a few words only: the why stays in someone's head."""
    NOBODY_DECIDES = "nobody-decides"
    """Most cases end by the contract's end-of-chain decision: nobody owns the call."""
    MISSED_SLAS = "missed-slas"
    """Many cases people decided had first passed from group to group as SLAs ran out."""
    DRIFTED_COPIES = "drifted-copies"
    """Drift checks found copies in a target that no longer match their source of truth."""

    @property
    def theme(self) -> Theme:
        return _THEMES[self]


_THEMES = {
    SignKind.SPLIT_DECISION: Theme.TEAMS_DISAGREE,
    SignKind.FOREIGN_CORRECTION: Theme.NO_SOURCE_OF_TRUTH,
    SignKind.OVERRIDDEN_RULE: Theme.INFORMAL_KNOWLEDGE,
    SignKind.TERSE_REASONS: Theme.INFORMAL_KNOWLEDGE,
    SignKind.NOBODY_DECIDES: Theme.AUTOMATION_BEFORE_RULE,
    SignKind.MISSED_SLAS: Theme.GOVERNANCE,
    SignKind.DRIFTED_COPIES: Theme.NO_SOURCE_OF_TRUTH,
}


class Thresholds(BaseModel):
    """When a share becomes a warning sign. `HANDOFF_DIAGNOSE_*` settings give them for `handoff diagnose`."""

    model_config = ConfigDict(frozen=True)

    min_cases: int = Field(
        default=5, ge=1, description="The fewest cases a share is taken over before it is judged at all."
    )
    override_share: float = Field(
        default=0.5, gt=0, le=1, description="A rule approved as is in at least this share of its decided cases."
    )
    timeout_share: float = Field(
        default=0.5, gt=0, le=1, description="At least this share of decided cases ended by the end-of-chain decision."
    )
    escalation_share: float = Field(
        default=0.25, gt=0, le=1, description="At least this share of operator-decided cases was escalated first."
    )
    short_reason_words: int = Field(default=3, ge=1, description="A reason with fewer words than this says too little.")
    short_reason_share: float = Field(
        default=0.5, gt=0, le=1, description="At least this share of operator decisions gives a short reason."
    )


class WarningSign(BaseModel):
    """One sign found in one handoff: what, about which subject, how often, and cases to open to see it."""

    kind: SignKind
    theme: Theme
    subject: str | None = Field(
        default=None, description="The rule, violation, owning system... the sign is about; None: the whole handoff."
    )
    summary: str = Field(description="The sign in one sentence, with its figures.")
    counts: dict[str, int] = Field(description="The evidence, counted: e.g. approved / decided, by group.")
    examples: list[str] = Field(default_factory=list, description="Ids of cases that show it (a few).")


class Diagnosis(BaseModel):
    """One handoff's verdict, and the signs it rests on."""

    handoff: str
    verdict: Verdict
    cases: int = Field(description="Cases opened in the window.")
    decided: int = Field(description="Of them, decided (by an operator or by the end-of-chain decision).")
    signs: list[WarningSign] = Field(default_factory=list)
    notes: list[str] = Field(
        default_factory=list, description="What could not be judged, and why (too few cases, no known sender)."
    )


class DiagnosisReport(BaseModel):
    """The diagnosis of every handoff asked for, over the cases opened since `since`."""

    generated_at: datetime
    since: datetime
    thresholds: Thresholds
    handoffs: list[Diagnosis]
