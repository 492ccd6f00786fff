"""Undo methods an ordered delivery calls exist, and are declared only where something calls them.

A `SyncTarget(undo="cancel")` is called when a later target of an ordered sync refuses the record. Two mistakes stop
the contract before any run: a method the registered adapter does not have (the undo would fail on the day it is
needed, and the write would stay), and an undo in a sync that is not ordered (targets are then written all at once,
and nothing is ever undone: the contract would promise what delivery does not do).
"""

from __future__ import annotations

from collections.abc import Mapping

from handoff.schemas.contract import HandoffContract
from handoff.schemas.findings import Finding, FindingKind


def undo_findings(contract: HandoffContract, methods: Mapping[str, frozenset[str]] | None) -> list[Finding]:
    """One finding per `undo` the target's adapter lacks (when `methods` is known), or that no ordered sync calls."""
    if contract.sync is None:
        return []
    findings = []
    for target in contract.sync.targets:
        if target.undo is None:
            continue
        subject = target.system
        if not contract.sync.ordered:
            findings.append(
                Finding(
                    kind=FindingKind.UNDO_WITHOUT_ORDER,
                    contract=contract.name,
                    subject=subject,
                    message=f"{contract.name} declares undo={target.undo!r} for {target.system}, but its Sync is not "
                    "ordered: targets are written all at once and nothing is undone. Set Sync(ordered=True), or "
                    "drop the undo.",
                )
            )
        known = None if methods is None else methods.get(target.system)
        if known is not None and target.undo not in known:
            findings.append(
                Finding(
                    kind=FindingKind.UNKNOWN_UNDO,
                    contract=contract.name,
                    subject=subject,
                    message=f"{contract.name} undoes its write to {target.system} with {target.undo}(record_key), "
                    f"but the {target.system} adapter has no such method (its methods: "
                    f"{', '.join(sorted(known)) or 'none'}): add it to the adapter, or name one it has.",
                )
            )
    return findings
