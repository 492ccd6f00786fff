"""The ledger's tables: every run, case, violation, decision, escalation, refusal and delivery, in one SQL schema.

These sqlmodel table classes live on the activities side on purpose: Temporal's sandbox re-imports what workflows
import, and a table class defined twice breaks SQLAlchemy's metadata. Times are stored in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def _utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index))


class RunRow(SQLModel, table=True):
    """One handoff run, mirrored from Temporal: its contract stamp, payload and current stage."""

    __tablename__ = "runs"

    workflow_id: str = Field(primary_key=True)
    handoff: str = Field(index=True)
    event: str
    dedupe_key: str
    contract_version: int
    contract_hash: str = Field(index=True)
    stage: str = Field(index=True)
    last_step: int = 0
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime = _utc_column(index=True)
    updated_at: datetime = _utc_column()
    finished_at: datetime | None = _utc_column(nullable=True)
    override: bool = False
    failure: str | None = None
    purged_at: datetime | None = _utc_column(nullable=True)
    """When `handoff purge` removed the run's payload snapshots (here, in its cases, decisions and deliveries)."""


class CaseRow(SQLModel, table=True):
    """An exception case: bad data waiting for (or resolved by) a decision."""

    __tablename__ = "cases"

    id: str = Field(primary_key=True)
    workflow_id: str = Field(index=True)
    handoff: str = Field(index=True)
    owner_group: str = Field(index=True)
    status: str = Field(index=True)
    opened_at: datetime = _utc_column()
    sla_deadline: datetime = _utc_column()
    decided_at: datetime | None = _utc_column(nullable=True)
    decision: str | None = None
    allowed: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    claimed_by: str | None = None
    """The operator who holds the case now (claimed, or reassigned to them); None when nobody does."""
    claimed_at: datetime | None = _utc_column(nullable=True)


class ViolationRow(SQLModel, table=True):
    """One broken rule of a case, in the order the contract lists its rules."""

    __tablename__ = "violations"
    __table_args__ = (UniqueConstraint("case_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(index=True, foreign_key="cases.id")
    position: int
    rule: str
    kind: str
    field: str
    value: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    reason: str


class DecisionRow(SQLModel, table=True):
    """The decision that resolved a case: by an operator, or the contract's end-of-chain decision."""

    __tablename__ = "decisions"

    case_id: str = Field(primary_key=True, foreign_key="cases.id")
    workflow_id: str = Field(index=True)
    handoff: str = Field(index=True)
    decision: str
    operator: str
    group: str | None = None
    reason: str
    patch: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    decided_at: datetime = _utc_column()
    by_timeout: bool = False


class EscalationRow(SQLModel, table=True):
    """A case passed from one group to the next because its SLA passed."""

    __tablename__ = "escalations"
    __table_args__ = (UniqueConstraint("case_id", "to_group"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(index=True, foreign_key="cases.id")
    workflow_id: str = Field(index=True)
    from_group: str
    to_group: str
    at: datetime = _utc_column()


class RefusedDecisionRow(SQLModel, table=True):
    """A decision sent as a signal and refused by the workflow; nothing changed, but the attempt is audited."""

    __tablename__ = "refused_decisions"
    __table_args__ = (UniqueConstraint("workflow_id", "sequence"),)

    id: int | None = Field(default=None, primary_key=True)
    workflow_id: str = Field(index=True)
    handoff: str
    sequence: int
    case_id: str
    decision: str
    operator: str
    reason: str
    refusal: str
    at: datetime = _utc_column()


class DeliveryRow(SQLModel, table=True):
    """The fields one run wrote to one target system."""

    __tablename__ = "deliveries"

    workflow_id: str = Field(primary_key=True)
    system: str = Field(primary_key=True)
    handoff: str = Field(index=True)
    record_key: str
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    delivered_at: datetime = _utc_column()
    undone_at: datetime | None = _utc_column(nullable=True)
    """When an ordered delivery's compensation undid this write (a later target refused); None while it stands."""


class OperatorRow(SQLModel, table=True):
    """Someone with an API token: an operator who decides their groups' cases, or another role
    (`schemas.operators.Role`). The token is kept only as a hash."""

    __tablename__ = "operators"

    name: str = Field(primary_key=True)
    groups: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    token_hash: str = Field(index=True, unique=True)
    created_at: datetime = _utc_column()
    role: str = "operator"


class SourceRow(SQLModel, table=True):
    """A system that sends events: the events it may send (`source_secrets` holds what it signs them with)."""

    __tablename__ = "sources"

    name: str = Field(primary_key=True)
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _utc_column()


class SourceSecretRow(SQLModel, table=True):
    """A secret a source signs events with: the newest two of a source are active (rotation), older ones are gone.

    Kept as given, not hashed, because verifying an HMAC needs the key itself."""

    __tablename__ = "source_secrets"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True, foreign_key="sources.name")
    secret: str
    created_at: datetime = _utc_column()


class SeenSignatureRow(SQLModel, table=True):
    """A signature accepted once, kept until its timestamp leaves the tolerance window: the key refuses a replay,
    whichever API process it reaches."""

    __tablename__ = "seen_signatures"

    source: str = Field(primary_key=True)
    signature: str = Field(primary_key=True)
    expires_at: datetime = _utc_column(index=True)


class CaseEventRow(SQLModel, table=True):
    """Something people did on a case besides deciding it: claimed, released, reassigned, commented, a first approval
    waiting for a second. The case's history shows these beside the decision, escalations and refusals."""

    __tablename__ = "case_events"

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(index=True, foreign_key="cases.id")
    workflow_id: str = Field(index=True)
    kind: str
    """claimed, released, reassigned, commented, first-approval."""
    operator: str
    """Who did it."""
    to_operator: str | None = None
    """For a reassignment: who holds the case now."""
    text: str | None = None
    """A comment's words, or the reason given with the act."""
    at: datetime = _utc_column()


class NoticeRow(SQLModel, table=True):
    """A notification sent about a case (opened, escalated, SLA nearly over) through one notifier: at most once per
    case, event, group and notifier, however often the sending activity is retried."""

    __tablename__ = "notices"
    __table_args__ = (UniqueConstraint("case_id", "event", "owner_group", "notifier"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(index=True)
    workflow_id: str
    event: str
    owner_group: str
    notifier: str
    sent_at: datetime = _utc_column()


class HoldRow(SQLModel, table=True):
    """A handoff held by its exception budget (too many runs opened a case), and the operator's resume or rejection:
    the audit of every hold. At most one active hold a handoff: `active_handoff` is unique while held, NULL after."""

    __tablename__ = "holds"

    id: int | None = Field(default=None, primary_key=True)
    handoff: str = Field(index=True)
    active_handoff: str | None = Field(default=None, unique=True)
    """The handoff while the hold is active, NULL once decided: the key that allows one active hold a handoff."""
    state: str = Field(index=True)
    """held, resumed, rejected."""
    held_at: datetime = _utc_column()
    runs: int
    runs_with_case: int
    case_rate: float
    window_seconds: float
    owner_group: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = _utc_column(nullable=True)
    reason: str | None = None


class OutboxNoticeRow(SQLModel, table=True):
    """A notice about a case waiting to be sent, written with the ledger record it goes with (the case opened, the
    escalation): the workers' outbox sender sends it, retried with backoff, also after its run has ended. Unique per
    case, event and group, so a retried ledger write queues it once; each notifier still sends it at most once
    (`notices`)."""

    __tablename__ = "notice_outbox"
    __table_args__ = (
        UniqueConstraint("case_id", "event", "owner_group"),
        # The senders ask every second for the waiting notices that are due; sent ones pile up behind them.
        Index("ix_notice_outbox_waiting", "sent_at", "gave_up_at", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    case_id: str
    event: str
    owner_group: str
    workflow_id: str
    handoff: str
    notice: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    attempts: int = 0
    due_at: datetime = _utc_column()
    lease_until: datetime | None = _utc_column(nullable=True)
    """While a sender holds the notice: another sender takes it only once this has passed (the holder died)."""
    sent_at: datetime | None = _utc_column(nullable=True)
    gave_up_at: datetime | None = _utc_column(nullable=True)
    error: str | None = None


LEDGER_TABLES = tuple(
    row.__table__  # type: ignore[union-attr]  # SQLModel adds it to table classes
    for row in (
        RunRow,
        CaseRow,
        ViolationRow,
        DecisionRow,
        EscalationRow,
        RefusedDecisionRow,
        DeliveryRow,
        OperatorRow,
        SourceRow,
        SourceSecretRow,
        SeenSignatureRow,
        CaseEventRow,
        NoticeRow,
        HoldRow,
        OutboxNoticeRow,
    )
)
"""Every table of the ledger: what a new ledger is made of (`database.create_schema`). `SQLModel.metadata` may also
hold tables of the user's own; these are the ledger's. A test keeps the list equal to what the revisions build."""
