"""The shapes the HTTP API and the CLI's `--json` share: request bodies, listings of cases and runs, errors, health.

Both edges read the same ledger and answer with the same models, so a script can switch between `handoff cases
--json` and `GET /cases` without translating anything. Times are UTC; durations are seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from handoff.schemas.cases import CaseStatus, DecisionRecord, Escalation, Violation
from handoff.schemas.contract import DecisionKind
from handoff.schemas.runs import FieldError, HandoffStatus, Stage

NonEmptyText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class DecisionBody(BaseModel):
    """`POST /cases/{id}/decision`: what the operator decides and why. Who they are comes from their token."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision: DecisionKind
    reason: NonEmptyText = Field(description="Why: kept in the audit trail. Must not be empty.")
    patch: dict[str, Any] = Field(
        default_factory=dict, description="For 'correct': field path (`entity.field`) -> new value."
    )


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


class RefusedAttempt(BaseModel):
    """A decision that was sent for a case and refused; nothing changed, the attempt is kept for the audit."""

    decision: str
    operator: str
    reason: str
    refusal: str
    at: datetime


class CaseDetail(BaseModel):
    """Everything about one case: the violations, the payload as it was, escalations, the decision, refusals."""

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
