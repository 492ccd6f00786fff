"""The shapes the HTTP API and the CLI's `--json` share: request bodies, listings of cases and runs, errors, health.

Both edges read the same ledger and answer with the same models, so a script can switch between `handoff cases
--json` and `GET /cases` without translating anything. Times are UTC; durations are seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from handoff.schemas.case_history import CaseEvent, CommentText
from handoff.schemas.cases import CaseStatus, DecisionRecord, Escalation, Violation
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import FieldError, HandoffStatus, Stage

NonEmptyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

MAX_BULK_CASES = 100
"""How many cases one bulk decision may name: a page of the inbox, not the whole ledger in one request."""


class DecisionBody(BaseModel):
    """`POST /cases/{id}/decision`: what the operator decides and why. Who they are comes from their token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision: DecisionKind
    reason: NonEmptyText = Field(description="Why: kept in the audit trail. Must not be empty.")
    patch: dict[str, Any] = Field(
        default_factory=dict, description="For 'correct': field path (`entity.field`) -> new value."
    )


class ReassignBody(BaseModel):
    """`POST /cases/{id}/reassign`: the operator of the owner group who holds the case from now on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to: NonEmptyText = Field(description="The operator's name, as `handoff operators list` shows it.")


class CommentBody(BaseModel):
    """`POST /cases/{id}/comments`: a note for the group. Who wrote it comes from the token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: CommentText = Field(description="1 to 2000 characters, not only spaces (kept trimmed), without NUL.")


BulkDecisionKind = Literal[DecisionKind.APPROVE, DecisionKind.REJECT, DecisionKind.RETRY]
"""The decisions a bulk request may carry: a correction needs its own patch per case, so it is decided alone."""


class BulkDecisionBody(BaseModel):
    """`POST /cases/decisions` (and `handoff decide-many`): one decision and reason for several open cases of one
    handoff. Each case is still decided on its own: its own refusal check and its own audit row."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_ids: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        min_length=1,
        max_length=MAX_BULK_CASES,
        description=f"1 to {MAX_BULK_CASES} distinct case ids, all of one handoff.",
        json_schema_extra={"uniqueItems": True},
    )
    decision: BulkDecisionKind
    reason: NonEmptyText = Field(description="Why: kept in each case's audit trail. Must not be empty.")
    handoff: str | None = Field(
        default=None, description="When given, every case must be of this handoff (a guard against a wrong id)."
    )

    @field_validator("decision", mode="before")
    @classmethod
    def _no_corrections(cls, value: object) -> object:
        if value == DecisionKind.CORRECT.value:
            raise ValueError(
                "a correction sets fields of one payload: decide it alone (`POST /cases/{id}/decision`), "
                "not in bulk; bulk takes approve, reject or retry"
            )
        return value

    @field_validator("case_ids")
    @classmethod
    def _distinct(cls, case_ids: list[str]) -> list[str]:
        repeated = sorted({case_id for case_id in case_ids if case_ids.count(case_id) > 1})
        if repeated:
            raise ValueError(f"names {', '.join(repeated)} more than once: name each case once")
        return case_ids


class BulkOutcome(BaseModel):
    """What became of one case of a bulk decision."""

    case_id: str
    outcome: Literal["decided", "first-approval", "refused", "failed"] = Field(
        description="decided; first-approval (four eyes: it waits for a second operator of the group); refused "
        "(`kind`, `detail`: the case is as it was); failed (Temporal did not answer: read the case before sending "
        "it again)."
    )
    kind: str | None = Field(default=None, description="For a refusal: e.g. not-owner, held-by-another.")
    detail: str | None = Field(default=None, description="For a refusal or a failure, in words.")
    decision: DecisionRecord | None = Field(default=None, description="The decision, or the first approval.")
    next_stage: str | None = Field(default=None, description="Where the run goes next.")


class BulkDecisionResult(BaseModel):
    """Each case's outcome, in the order the request named them, and how many of each."""

    decided: int
    first_approvals: int = 0
    refused: int
    failed: int = 0
    outcomes: list[BulkOutcome]


class ErrorBody(BaseModel):
    """Every error the API answers: `detail` names the problem in words; `errors` lists field problems, if any."""

    detail: str
    kind: str | None = Field(default=None, description="A stable name for the problem, e.g. 'not-owner'.")
    errors: list[FieldError] = Field(default_factory=list)


class CaseSummary(BaseModel):
    """One line of the case list: whose it is, how old, how long until the SLA passes, and what is wrong."""

    id: str
    handoff: str
    workflow_id: str
    owner_group: str
    status: CaseStatus
    opened_at: datetime
    sla_deadline: datetime
    age_seconds: float
    sla_left_seconds: float = Field(description="Negative once the deadline has passed.")
    violations: list[str] = Field(description="The broken rules' labels, in the contract's order.")
    decision: DecisionKind | None = None
    claimed_by: str | None = Field(
        default=None, description="Who holds the open case: claimed it, or had it handed to them. None: nobody."
    )
    claimed_at: datetime | None = None


class RefusedAttempt(BaseModel):
    """A decision that was sent for a case and refused; nothing changed, the attempt is kept for the audit."""

    decision: str
    operator: str
    reason: str
    refusal: str
    at: datetime


class CaseDetail(BaseModel):
    """Everything about one case: the violations, the payload as it was, escalations, the decision, refusals, who
    holds it, and its history."""

    id: str
    handoff: str
    workflow_id: str
    run_stage: Stage | None
    owner_group: str
    status: CaseStatus
    opened_at: datetime
    sla_deadline: datetime
    age_seconds: float
    sla_left_seconds: float
    allowed: list[DecisionKind]
    violations: list[Violation]
    payload: dict[str, Any] = Field(description="The payload when the case was opened.")
    escalations: list[Escalation] = Field(default_factory=list)
    decision: DecisionRecord | None = None
    refused: list[RefusedAttempt] = Field(default_factory=list)
    claimed_by: str | None = Field(
        default=None, description="Who holds the case; None when nobody does, and always once it is decided."
    )
    claimed_at: datetime | None = None
    history: list[CaseEvent] = Field(
        default_factory=list,
        description="Everything that happened to the case, oldest first: opened, claims, comments, escalations, "
        "refused decisions, the decision.",
    )


class RunSummary(BaseModel):
    """One run as the ledger records it."""

    workflow_id: str
    handoff: str
    event: str
    dedupe_key: str
    contract_version: int
    contract_hash: str
    stage: Stage
    received_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    override: bool = False
    failure: str | None = None
    cases: int = Field(default=0, description="How many exception cases the run opened.")


class RunDetail(BaseModel):
    """One run: the live `status` query when Temporal still has it, else the ledger's record of it."""

    source: Literal["temporal", "ledger"]
    status: HandoffStatus
    run: RunSummary | None = Field(default=None, description="The ledger's line for the run, once it has one.")


class HealthStatus(BaseModel):
    """`GET /healthz`: whether the API can reach what it needs. Each check says `ok` or what went wrong."""

    status: Literal["ok", "unavailable"]
    ledger: str
    temporal: str
