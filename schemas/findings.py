"""What the readiness gate reports: one `Finding` per unanswered question or contradiction."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from handoff.schemas.systems import TargetField


class FindingKind(StrEnum):
    """Every reason a contract is not ready. Each maps to one of the six questions or to a contradiction."""

    NO_TRIGGER = "no-trigger"
    NO_DEDUPE_KEY = "no-dedupe-key"
    ENTITY_WITHOUT_OWNER = "entity-without-owner"
    SYNCED_FIELD_WITHOUT_OWNER = "synced-field-without-owner"
    NO_SYNC = "no-sync"
    NO_RULES = "no-rules"
    NO_EXCEPTION_OWNER = "no-exception-owner"
    NO_TIMEOUT_DECISION = "no-timeout-decision"
    NO_GAIN_TARGET = "no-gain-target"
    CONFLICTING_SOURCE_OF_TRUTH = "conflicting-source-of-truth"
    SYNC_OVERWRITES_SOURCE = "sync-overwrites-source"
    CONTRADICTORY_RULES = "contradictory-rules"
    RULE_TYPE_MISMATCH = "rule-type-mismatch"
    """A rule that cannot hold for the field's type: a bound on a text, a pattern on a number."""
    UNKNOWN_FIELD = "unknown-field"
    ESCALATION_LOOP = "escalation-loop"
    UNDECLARED_GROUP = "undeclared-group"
    UNKNOWN_LOOKUP = "unknown-lookup"
    UNKNOWN_SYSTEM = "unknown-system"
    TARGET_WITHOUT_ADAPTER = "target-without-adapter"
    """A sync target that is registered as a source only: nothing could write to it."""
    UNKNOWN_TRANSFORM = "unknown-transform"
    UNKNOWN_TARGET_FIELD = "unknown-target-field"
    """A synced field the target's adapter says it has no place for."""
    TARGET_FIELD_TYPE = "target-field-type"
    """A synced field whose values the target's field cannot take: a text into a number."""
    TARGET_FIELD_UNBOUNDED = "target-field-unbounded"
    """A synced field that can hold more than the target's field (longer, larger) with no rule to stop it first."""
    MALFORMED_SCHEDULE = "malformed-schedule"
    """A trigger's schedule Temporal could not run: no clock or two, a cron it cannot read, no source named."""
    UNKNOWN_SCHEDULE_SOURCE = "unknown-schedule-source"
    """A schedule takes its payloads from a function the app does not register (`@app.scheduled`)."""
    CHANGED_SINCE_LOCKED = "changed-since-locked"
    """The contract's content differs from the same version in the app's lock file: a change needs a new version."""
    UNKNOWN_UNDO = "unknown-undo"
    """A `SyncTarget.undo` names a method the target's adapter does not have: the write could never be undone."""
    UNDO_WITHOUT_ORDER = "undo-without-order"
    """A `SyncTarget.undo` in a sync that is not ordered: parallel delivery never undoes anything."""


class Finding(BaseModel):
    """One reason a contract is not ready, in words a developer can act on."""

    model_config = ConfigDict(frozen=True)

    kind: FindingKind
    contract: str
    subject: str
    """The field, rule, entity, group or system the finding is about (several joined by ' / ')."""
    message: str
    """The unanswered question or the contradiction, in plain words, and what to do."""


class ContractReadiness(BaseModel):
    """The gate's verdict on one contract."""

    contract: str
    version: int
    content_hash: str
    findings: list[Finding]

    @property
    def ready(self) -> bool:
        return not self.findings


class CatalogReadiness(BaseModel):
    """The gate's verdict on the whole catalog: every contract alone, and the catalog-wide checks."""

    contracts: list[ContractReadiness]

    @property
    def ready(self) -> bool:
        return all(c.ready for c in self.contracts)

    @property
    def findings(self) -> list[Finding]:
        return [f for c in self.contracts for f in c.findings]


class Registries(BaseModel):
    """The names an app registered beside its contracts: what the gate checks every contract's references against.

    `handoff check` and the worker build this from the same app, so they give the same findings.
    """

    model_config = ConfigDict(frozen=True)

    lookups: frozenset[str] = frozenset()
    """Checks a `Lookup` rule may name (`@app.lookup`)."""
    sources: frozenset[str] = frozenset()
    """Systems that send events and own records, reached by no adapter (`app.source`)."""
    targets: frozenset[str] = frozenset()
    """Systems with an adapter, which deliveries can write to (`app.system`)."""
    transforms: frozenset[str] = frozenset()
    """Conversions a `SyncTarget` may apply to a field (`@app.transform`)."""
    scheduled: frozenset[str] = frozenset()
    """Functions a `Schedule` may take its payloads from (`@app.scheduled`)."""
    accepts: dict[str, dict[str, TargetField]] = Field(default_factory=dict)
    """System -> the fields its adapter declares it accepts (`adapter.accepts`), for adapters that declare them."""
    methods: dict[str, frozenset[str]] | None = None
    """System -> the public methods of its adapter (what a `SyncTarget.undo` may name); None skips that check."""

    @property
    def systems(self) -> frozenset[str]:
        return self.sources | self.targets
