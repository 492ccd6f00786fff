"""Inputs and results of every activity: one model each, so fields can be added later without breaking histories.

The workflow builds these; the activities in `activities/` receive them through Temporal's pydantic converter.
New fields always get defaults, so an old history still decodes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from handoff.schemas.cases import (
    DecisionRecord,
    DecisionRequest,
    Escalation,
    ExceptionCase,
    RefusedDecision,
    Violation,
)
from handoff.schemas.runs import Delivery, Stage

# Activity names: the contract between the workflow (which may not import activities/) and the worker.
RECORD_STAGE_CHANGE = "record_stage_change"
RECORD_ESCALATION = "record_escalation"
RECORD_REFUSAL = "record_refusal"
RUN_LOOKUPS = "run_lookups"
DELIVER = "deliver"
VERIFY_DECISION = "verify_decision"
"""A local activity: it holds the decision key, and its verdict is recorded in the run's history."""
RECORD_FIRST_APPROVAL = "record_first_approval"
NOTIFY_OWNERS = "notify_owners"
"""Tell a case's owner group that it waits for them, through the notifiers the app configures."""


class RunStamp(BaseModel):
    """What the ledger keeps about a run from its first record on: the contract it runs under and its input."""

    model_config = ConfigDict(frozen=True)

    handoff: str
    event: str
    dedupe_key: str
    contract_version: int
    contract_hash: str
    payload: dict[str, Any]
    received_at: datetime


class StageChange(BaseModel):
    """One stage change of a run, with what changed alongside it (a case opened or decided, a failure).

    `step` counts the run's ledger records; the ledger applies a change only if its step is newer than the last one
    it applied, so a retried activity never duplicates a row nor moves a run backwards.
    """

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    step: int = Field(ge=0)
    stage: Stage
    at: datetime
    run: RunStamp | None = None
    case: ExceptionCase | None = None
    decision: DecisionRecord | None = None
    override: bool = False
    failure: str | None = None
    notice: CaseNotice | None = None
    """A notice to the case's owner group, queued in the ledger's outbox in the same transaction (new runs)."""
    restates: bool = False
    """The run's override and finish as the change has them, set outright rather than added to the ledger's: the first
    change after a step the run never used, whose unconfirmed write may have left others (`verify_decision`)."""


class EscalationRecord(BaseModel):
    """A case passed to the next group of its chain, which now has until `sla_deadline`."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    case_id: str
    escalation: Escalation
    sla_deadline: datetime
    notice: CaseNotice | None = None
    """The notice to the new owner group, queued in the ledger's outbox with the escalation (new runs)."""


class FirstApprovalRecord(BaseModel):
    """Four eyes: an operator's approval (or correction) of a case, waiting for a second operator to agree."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    approval: DecisionRecord


class RefusalRecord(BaseModel):
    """A decision (Update or signal) the workflow refused; kept for the audit trail. `case_id` may name no known
    case."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    handoff: str
    sequence: int = Field(ge=0, description="The run's count of refusals, the idempotency key with the run.")
    refused: RefusedDecision
    reopened: StageChange | None = None
    """The run's stage and its open case again, at a step of their own, when the refused decision's verification was
    handed its stage change and did not confirm writing it: whatever an attempt may have written is undone."""


class DecisionCheck(BaseModel):
    """A decision that arrived at a run, to authorise before the run judges it."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    request: DecisionRequest
    at: datetime
    """The run's time when the decision arrived: an attestation older than its lifetime by then is refused."""
    owner_group: str | None = None
    """The group that owns the case now: with `stage_change`, the one rule the run left to the verdict."""
    stage_change: StageChange | None = None
    """The decision's stage change, as the run will enter it: recorded in the ledger by the verification itself when
    the operator is verified and in `owner_group` (runs with `decisions-recorded-when-verified`, which judged
    everything else already), so a decision costs one local activity instead of two."""


class DecisionVerdict(BaseModel):
    """Who sent a decision, as far as the ledger and the attestation can tell."""

    model_config = ConfigDict(frozen=True)

    problem: str | None = None
    """Why the decision is not authorised, in words for the operator; None when it is."""
    operator_groups: tuple[str, ...] = ()
    """The operator's groups in the ledger now (never the ones the request claims); empty when refused."""
    recorded: bool = False
    """The ledger holds the check's `stage_change`: the run takes the decision and records nothing more for it."""


class LookupCheck(BaseModel):
    """One `Lookup` rule with the value it must check."""

    model_config = ConfigDict(frozen=True)

    check: str
    rule: str
    field: str
    value: Any = None
    reason: str
    nested: bool = False
    """Inside a `When`: its answer counts only through that rule, so a failure is no violation of its own."""


class LookupRequest(BaseModel):
    """Every look-up a validation pass needs, run in one activity so a pass costs one activity, not one per rule."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    handoff: str
    checks: list[LookupCheck]
    stage_change: StageChange | None = None
    """A stage change the run has not recorded yet, recorded first: the ledger write rides with this activity."""


class LookupResult(BaseModel):
    violations: list[Violation] = Field(default_factory=list)
    """One per failed look-up of the contract itself."""
    failed: list[str] = Field(default_factory=list)
    """The labels of every look-up that failed, nested ones included."""


class SyncedField(BaseModel):
    """One payload field on its way to a target system."""

    model_config = ConfigDict(frozen=True)

    path: str
    """The payload path, `entity.field`."""
    name: str
    """The name the target system receives it under."""
    value: Any = None
    transform: str | None = None
    """The app's transform (`@app.transform`) the delivery applies to the value before writing it, if any."""


class DeliveryRequest(BaseModel):
    """Write the synced fields to one system, once: the run's workflow id is the idempotency key."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    handoff: str
    system: str
    fields: list[SyncedField]
    source_of_truth: dict[str, str] = Field(
        default_factory=dict, description="Entity -> owning system: a delivery into an owner is refused."
    )
    stage_change: StageChange | None = None
    """A stage change the run has not recorded yet, recorded first (each target's request carries the same one; the
    ledger applies it once): the ledger write rides with the delivery."""
    finish: StageChange | None = None
    """The run's last stage change (delivered), recorded once this write is done, at the time it is: given to the one
    target whose delivery ends the run, so that the end rides with it too."""


class DeliveryRefusal(BaseModel):
    """Why a target system did not take a run's record: its refusal, or its silence after every attempt.

    Delivery answers a refusal with this, instead of failing, so the workflow can open an exception case that names
    the field and the system's reason; an operator corrects the field, retries, or rejects the run.
    """

    model_config = ConfigDict(frozen=True)

    system: str
    field: str | None = None
    """The payload path (`entity.field`) the system refused, when the refusal names one."""
    target_field: str | None = None
    """The name the system knows that field by (the `SyncTarget`'s rename, if any)."""
    value: Any = None
    reason: str
    """The system's words, or delivery's: what a person reads in the case."""
    error: str
    """The error's type: `InvalidFieldValue`, `UnknownField`, `DeliveryRefused`, ... or `NoAnswer` when every
    attempt failed without a refusal."""


class DeliveryResult(BaseModel):
    """A record written (or found written before), or the system's refusal to take it."""

    delivery: Delivery | None = None
    already_written: bool = False
    refusal: DeliveryRefusal | None = None


class NoticeEvent(StrEnum):
    """What happened to a case that its owner group should hear about."""

    OPENED = "opened"
    ESCALATED = "escalated"
    SLA_WARNING = "sla-warning"
    """A fifth of the owner group's SLA is left."""
    BUDGET_HELD = "budget-held"
    """Not about one case: the handoff spent its exception budget and holds its new runs (`schemas.budget`)."""


class CaseNotice(BaseModel):
    """One notification about a case, for every notifier of the app: what happened, to which group, by when.

    It carries the rules' reasons, never the payload's values: a notification travels through chat and e-mail, so
    personal data stays behind the inbox's sign-in.
    """

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    handoff: str
    case_id: str
    event: NoticeEvent
    owner_group: str
    sla_deadline: datetime
    reasons: list[str] = Field(default_factory=list)
    """Each violation's reason, as the contract words it."""
    at: datetime


UNDO_DELIVERY = "undo_delivery"
"""Undo one target's write of a run, through its adapter's `undo` method: an ordered delivery's compensation."""


class UndoRequest(BaseModel):
    """Undo what a run wrote to one system: the adapter's `undo` method, called with the write's record key."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    handoff: str
    system: str
    record_key: str
    undo: str
    """The adapter method to call (`SyncTarget.undo`)."""


class UndoResult(BaseModel):
    """The write is undone (and the ledger says so), or why it stays: the system has no such method."""

    model_config = ConfigDict(frozen=True)

    undone: bool
    problem: str | None = None
    """Why the write stays, in words for the case: an adapter without the method the contract names."""


# Complete now the models that name a model defined below them. Left to pydantic, each would be completed on first
# use by looking its module up in `sys.modules`, which inside the workflow sandbox holds only the modules the
# workflow's own module imported: a model first built from passed-through code would find nothing there.
for _model in (StageChange, EscalationRecord, LookupRequest, DeliveryRequest):
    _model.model_rebuild()
