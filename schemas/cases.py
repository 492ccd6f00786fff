"""Exception cases and decisions: what bad data becomes, and how an operator resolves it.

A case is opened by the workflow when validation finds violations. It is decided by an operator of the group that
currently owns it (the contract's owner, then the escalation chain as SLAs pass), or by the contract's end-of-chain
decision. Every decision, and every refused attempt, is kept in the case's history and in the ledger.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from handoff.schemas.contract import DecisionKind


class Violation(BaseModel):
    """One rule that the payload broke, with the value that broke it and the reason a person reads."""

    model_config = ConfigDict(frozen=True)

    rule: str
    """The rule's label, e.g. 'reservation.party_size <= 12'."""
    kind: str
    """The rule kind: required, min, lookup, ..."""
    field: str
    value: Any = None
    reason: str


class RefusalKind(StrEnum):
    """Why a decision was refused. The API maps each to its HTTP status; the CLI prints the message."""

    UNKNOWN_CASE = "unknown-case"
    ALREADY_DECIDED = "already-decided"
    NOT_ALLOWED = "not-allowed"
    """The contract does not allow this decision."""
    NOT_OWNER = "not-owner"
    """The operator is not in the group that owns the case now."""
    INVALID_CORRECTION = "invalid-correction"
    SAME_APPROVER = "same-approver"
    """Four eyes: the second approval must come from another operator than the first."""
    DISAGREES = "disagrees"
    """Four eyes: the second approval differs from the first (another decision, other corrected values)."""
    UNAUTHORISED = "unauthorised"
    """Nothing vouches for who sent it: no valid attestation from Handoff's edge, or an operator the ledger does not
    have (any more)."""


class Refusal(BaseModel):
    """A decision the workflow will not take, and why, in words for the operator."""

    model_config = ConfigDict(frozen=True)

    kind: RefusalKind
    message: str


class CaseStatus(StrEnum):
    OPEN = "open"
    DECIDED = "decided"


class DecisionRequest(BaseModel):
    """A decision as an operator sends it, through a Temporal Update (or a signal, for callers that only signal).

    The edge (the API's bearer token, the CLI's operator token) authenticates the operator, and attests the request
    with `issued_at` and `attestation`: an HMAC with a key only Handoff's processes hold. The workflow takes only an
    attested decision of an operator the ledger has, and judges it with the groups the ledger gives that operator;
    `operator_groups` is what the edge saw, kept for the caller's information, never trusted. Requests recorded before
    attestation existed decode with neither.
    """

    model_config = ConfigDict(frozen=True)

    case_id: str = Field(min_length=1)
    decision: DecisionKind
    operator: str = Field(min_length=1)
    operator_groups: tuple[str, ...] = ()
    reason: str = Field(min_length=1, description="Why: kept in the audit trail.")
    patch: dict[str, Any] = Field(
        default_factory=dict, description="For 'correct': field path (`entity.field`) -> new value."
    )
    issued_at: datetime | None = None
    """When the edge attested the request (UTC); part of what the attestation covers."""
    attestation: str | None = None
    """The edge's HMAC-SHA256 over the request (`activities/authorisation.py`); None from anyone else."""


class DecisionRecord(BaseModel):
    """A decision that was applied to a case."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    decision: DecisionKind
    operator: str
    """The operator's name, or 'contract' for the end-of-chain decision."""
    group: str | None
    """The group the operator decided for; None for the end-of-chain decision."""
    reason: str
    patch: dict[str, Any] = Field(default_factory=dict)
    decided_at: datetime
    by_timeout: bool = False


class RefusedDecision(BaseModel):
    """A decision the run refused, by Update or by signal: kept in the case's history and the ledger; the case is as
    it was."""

    model_config = ConfigDict(frozen=True)

    request: DecisionRequest
    refusal: str
    kind: RefusalKind | None = None
    at: datetime


class Escalation(BaseModel):
    """The case passed from one group to the next because the SLA passed."""

    model_config = ConfigDict(frozen=True)

    from_group: str
    to_group: str
    at: datetime


class ExceptionCase(BaseModel):
    """Bad data made visible: the violations, a snapshot of the payload, and who must decide by when."""

    id: str
    handoff: str
    workflow_id: str
    violations: list[Violation]
    payload: dict[str, Any]
    owner_group: str
    opened_at: datetime
    sla_deadline: datetime
    allowed: list[DecisionKind]
    status: CaseStatus = CaseStatus.OPEN
    decision: DecisionRecord | None = None
    first_approval: DecisionRecord | None = None
    """Four eyes: an approval (or correction) waiting for a second operator to agree; the case is still open."""
    escalations: list[Escalation] = Field(default_factory=list)
    refused: list[RefusedDecision] = Field(default_factory=list)


class DecisionResult(BaseModel):
    """What the decision update returns: the case as decided, and where the run goes next."""

    case: ExceptionCase
    next_stage: str
