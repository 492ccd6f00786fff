"""What the readiness gate reports: one `Finding` per unanswered question or contradiction."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


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
