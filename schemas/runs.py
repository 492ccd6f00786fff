"""A handoff run: its input, its stages, its deliveries and the view of it that queries return."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from handoff.schemas.cases import ExceptionCase, RefusedDecision
from handoff.schemas.drift import DriftFinding


class Stage(StrEnum):
    """Where a run is. Also the `HandoffStage` search attribute, so runs can be listed by stage."""

    RECEIVED = "received"
    VALIDATING = "validating"
    AWAITING_DECISION = "awaiting-decision"
    HELD = "held"
    """Past the contract's exception budget: waits before delivery until an operator resumes or rejects the handoff."""
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in (Stage.DELIVERED, Stage.REJECTED, Stage.FAILED)


class HandoffInput(BaseModel):
    """What a trigger hands the workflow. The payload was already checked against the trigger's model at the edge."""

    model_config = ConfigDict(frozen=True)

    event: str
    payload: dict[str, Any]
    received_at: datetime
    sla_scale: float = Field(default=1.0, gt=0, description="Multiplies every SLA: tests and demos use seconds.")
    contract_version: int | None = Field(
        default=None, description="The contract version the trigger checked the payload against; None: the newest."
    )
    drift: DriftFinding | None = Field(
        default=None,
        description="A drift run: hold a drift case for this finding (copies that differ from the source), no delivery.",
    )


class Delivery(BaseModel):
    """The fields written to one target system, once."""

    model_config = ConfigDict(frozen=True)

    system: str
    record_key: str
    fields: dict[str, Any]
    delivered_at: datetime


class HandoffStatus(BaseModel):
    """A run as the `status` query returns it: Temporal's live view, which the ledger mirrors."""

    handoff: str
    workflow_id: str
    contract_version: int
    contract_hash: str
    stage: Stage
    payload: dict[str, Any]
    cases: list[ExceptionCase] = Field(default_factory=list)
    deliveries: list[Delivery] = Field(default_factory=list)
    override: bool = False
    """True when the payload was delivered by an 'approve' despite violations."""
    failure: str | None = None
    unmatched_refusals: list[RefusedDecision] = Field(default_factory=list)
    """Refused decision signals that named no case of this run."""


class HandoffResult(BaseModel):
    """What a run returns when it ends."""

    stage: Stage
    deliveries: list[Delivery] = Field(default_factory=list)
    cases: list[ExceptionCase] = Field(default_factory=list)


class TriggerAccepted(BaseModel):
    """What a trigger answers: the run that handles the event, new or (for a repeated event) the existing one."""

    handoff: str
    event: str
    workflow_id: str
    run_id: str
    duplicate: bool = False
    """True when this event had been received before and the existing run was returned."""


class FieldError(BaseModel):
    """One problem with an event payload: where (`reservation.party_size`) and what is wrong."""

    field: str
    message: str
    type: str
