"""Drift: a delivered copy that no longer matches its source of truth, and what a drift check finds and opens.

A contract's `Sync(drift_check=DriftCheck(...))` (in `schemas.contract`) makes a Temporal Schedule start the drift
check workflow `DRIFT_CHECK_WORKFLOW` every so often. Its activity `FIND_DRIFT` compares, for the handoff's recently
delivered runs, each target's copy with the source's current record and answers `DriftFindings`; `OPEN_DRIFT_CASES`
starts one drift run per finding (`HandoffInput.drift`), which holds a drift case for the contract's exception owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from handoff.schemas.cases import Violation

DRIFT_CHECK_WORKFLOW = "HandoffDriftCheck"
"""The drift check's workflow type: upper case, so no contract (lower case, by its name's pattern) is called that."""
FIND_DRIFT = "find_drift"
"""Reads the source and every delivered copy of the handoff's recent runs, and answers what differs."""
OPEN_DRIFT_CASES = "open_drift_cases"
"""Starts a drift run, holding a drift case, for each finding."""

DRIFT_EVENT = "drift"
"""The event a drift run is recorded with in the ledger: how the report tells drift runs from the handoff's own."""
DRIFT_KIND = "drift"
"""The kind of a drift case's violations (rules have `required`, `min`, ...; refused deliveries `delivery`)."""
DRIFT_RULE_PREFIX = "drift: "
"""A drift violation's rule is `drift: <system>`: the system whose copy differs (or the source, when it is gone)."""
WHOLE_RECORD = ""
"""The field of a violation about a whole record (a copy, or the source's record, that is gone)."""


class DriftCheckInput(BaseModel):
    """What the schedule (or `handoff drift check`) starts the drift check workflow with."""

    model_config = ConfigDict(frozen=True)

    handoff: str


class DriftCheckRequest(BaseModel):
    """One check, as `find_drift` gets it: `checked_at` is the workflow's time, the lookback's end."""

    model_config = ConfigDict(frozen=True)

    handoff: str
    checked_at: datetime


class FieldDrift(BaseModel):
    """One synced field whose copy in a target differs from what the source of truth says now."""

    model_config = ConfigDict(frozen=True)

    system: str
    """The target holding the copy."""
    field: str
    """The payload path (`booking.party_size`), or `WHOLE_RECORD` when the copy is gone."""
    target_field: str | None = None
    """The name the target keeps it under (its rename)."""
    source: str = ""
    """The system of truth of the field's entity."""
    source_value: Any = None
    """What the copy should hold: the source's value, with the target's transform applied."""
    copy_value: Any = None


class DriftFinding(BaseModel):
    """A delivered run whose copies differ from the source: what a drift case lists, one violation per field."""

    model_config = ConfigDict(frozen=True)

    handoff: str
    workflow_id: str
    """The delivered run whose copies drifted; its drift run is `<workflow_id>/drift-<n>`."""
    contract_version: int
    dedupe_key: str
    sources: tuple[str, ...]
    """The systems of truth the synced fields were read from."""
    source_gone: str | None = None
    """A system of truth that no longer has the record (its reader answered None): then that is the finding."""
    differences: tuple[FieldDrift, ...] = ()
    payload: dict[str, Any] = Field(default_factory=dict)
    """The record as the source holds it now (the delivered run's payload when the source's record is gone)."""
    checked_at: datetime

    @property
    def systems(self) -> list[str]:
        """The targets whose copies differ, in order."""
        return list(dict.fromkeys(difference.system for difference in self.differences))


class DriftFindings(BaseModel):
    """What one check compared and found."""

    handoff: str
    checked: int = 0
    """Delivered runs compared."""
    findings: list[DriftFinding] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    """Runs that could not be compared (a reader or an adapter failed, a record that fits no payload), in words."""


class DriftCheckResult(DriftFindings):
    """What a check found and which drift runs it started."""

    opened: list[str] = Field(default_factory=list)
    """Workflow ids of the drift runs started (or found open already) for this check's findings."""
    already_decided: list[str] = Field(default_factory=list)
    """Runs whose drift is the same as a drift case decided before: not raised again until it changes."""


class DriftReadability(BaseModel):
    """What the app can read, for the readiness gate: systems with a reader, and targets whose adapter can `read`."""

    model_config = ConfigDict(frozen=True)

    readers: frozenset[str] = frozenset()
    readable_targets: frozenset[str] = frozenset()


class SystemDrift(BaseModel):
    """A handoff's drift cases naming one system, for the report."""

    system: str
    cases: int
    open_cases: int


def drift_violations(finding: DriftFinding, *, personal: Sequence[str] = ()) -> list[Violation]:
    """The drift case's violations: one per differing field (or gone record), naming both values and both systems.

    Shared by the drift run, which opens the case with them, and the check, which compares them with the last drift
    case decided on the same run, so a drift already decided is not raised again until it changes. The values of
    `personal` fields stay out of the reason (a reason travels in notices, where personal data has no place); the
    violation's value, masked where reads mask, still holds the copy's.
    """
    sources = " and ".join(finding.sources)
    if finding.source_gone is not None:
        return [
            Violation(
                rule=f"{DRIFT_RULE_PREFIX}{finding.source_gone}",
                kind=DRIFT_KIND,
                field=WHOLE_RECORD,
                value=None,
                reason=f"{finding.source_gone} (the source of truth) no longer has record {finding.dedupe_key!r}, "
                f"which {finding.workflow_id} delivered: the copies it made are all that is left of it.",
            )
        ]
    violations = []
    for drift in finding.differences:
        if drift.field == WHOLE_RECORD:
            reason = (
                f"{drift.system} no longer holds the record {finding.workflow_id} delivered, while {sources} "
                f"still has {finding.dedupe_key!r}."
            )
        elif _is_personal(drift.field, personal):
            reason = (
                f"{drift.system} holds another value in {drift.target_field or drift.field!r} for {drift.field} "
                f"than {drift.source or sources} (the source of truth) has; both are in the case (personal data)."
            )
        else:
            reason = (
                f"{drift.system} holds {drift.copy_value!r} in {drift.target_field or drift.field!r} for "
                f"{drift.field}; {drift.source or sources} (the source of truth) says {drift.source_value!r}."
            )
        violations.append(
            Violation(
                rule=f"{DRIFT_RULE_PREFIX}{drift.system}",
                kind=DRIFT_KIND,
                field=drift.field,
                value=drift.copy_value,
                reason=reason,
            )
        )
    return violations


def _is_personal(path: str, personal: Sequence[str]) -> bool:
    """Whether `path` is marked personal, itself or through its entity (`guest` marks `guest.name`)."""
    return any(path == marked or path.startswith(f"{marked}.") for marked in personal)


def is_drift_case_violations(violations: list[Violation]) -> bool:
    """Whether these are a drift case's violations (and so the case's decisions are approve or reject only)."""
    return bool(violations) and all(violation.kind == DRIFT_KIND for violation in violations)
