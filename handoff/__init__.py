"""Handoff: every business handoff a durable Temporal workflow whose rules are a written contract.

This module is the public face: the names a user's package imports. Everything else (`handoff.schemas`,
`handoff.workflows`, `handoff.activities`, `handoff.workers`) is the engine's inside and may change.

The names load on first use (PEP 562), not when `handoff` is imported: Temporal's sandbox imports this package
afresh for every workflow run (it is the parent of the workflow's module), and must not pay for the engine's
I/O side (SQLAlchemy, structlog, FastAPI) each time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handoff.activities.adapter import InvalidFieldValue, SystemAdapter, UnknownField, WriteOutcome
    from handoff.schemas.contract import (
        Catalog,
        DecisionKind,
        DriftCheck,
        ExceptionBudget,
        ExceptionPolicy,
        FourEyes,
        Gain,
        HandoffContract,
        Measure,
        OperatorGroup,
        Overlap,
        Schedule,
        Sync,
        SyncTarget,
        Trigger,
    )
    from handoff.schemas.rules import Compare, Forbidden, Lookup, Max, MaxLength, Min, OneOf, Pattern, Required, When
    from handoff.schemas.runs import Stage
    from handoff.schemas.systems import TargetField
    from handoff.workers.app import AppNotReady, Handoffs
    from handoff.workers.testkit import HandoffKit

_HOMES = {
    "handoff.schemas.runs": ("Stage",),
    "handoff.workers.testkit": ("HandoffKit",),
    "handoff.workers.app": ("AppNotReady", "Handoffs"),
    "handoff.activities.adapter": ("InvalidFieldValue", "SystemAdapter", "UnknownField", "WriteOutcome"),
    "handoff.schemas.contract": (
        "Catalog",
        "DecisionKind",
        "DriftCheck",
        "ExceptionBudget",
        "ExceptionPolicy",
        "FourEyes",
        "Gain",
        "HandoffContract",
        "Measure",
        "OperatorGroup",
        "Overlap",
        "Schedule",
        "Sync",
        "SyncTarget",
        "Trigger",
    ),
    "handoff.schemas.rules": (
        "Compare",
        "Forbidden",
        "Lookup",
        "Max",
        "MaxLength",
        "Min",
        "OneOf",
        "Pattern",
        "Required",
        "When",
    ),
    "handoff.schemas.systems": ("TargetField",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "AppNotReady",
    "Catalog",
    "Compare",
    "DecisionKind",
    "DriftCheck",
    "ExceptionBudget",
    "ExceptionPolicy",
    "Forbidden",
    "FourEyes",
    "Gain",
    "HandoffContract",
    "HandoffKit",
    "Handoffs",
    "InvalidFieldValue",
    "Lookup",
    "Max",
    "MaxLength",
    "Measure",
    "Min",
    "OneOf",
    "OperatorGroup",
    "Overlap",
    "Pattern",
    "Required",
    "Schedule",
    "Stage",
    "Sync",
    "SyncTarget",
    "SystemAdapter",
    "TargetField",
    "Trigger",
    "UnknownField",
    "When",
    "WriteOutcome",
]


def __getattr__(name: str) -> Any:
    try:
        module = _HOME_OF[name]
    except KeyError:
        raise AttributeError(f"module 'handoff' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
