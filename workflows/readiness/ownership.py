"""Sources of truth: one system owns each entity, across the whole catalog, and no sync writes back over it.

Two contracts that name different owners for `customer` leave nobody able to say where a wrong phone number must be
fixed; a sync that writes `reservation.*` into the booking system that owns reservations overwrites the source of
truth with a copy of itself. The catalog-wide check indexes entities by name, so it stays linear in the catalog.
"""

from __future__ import annotations

from collections.abc import Sequence

from handoff.schemas.contract import HandoffContract
from handoff.schemas.findings import Finding, FindingKind
from handoff.workflows.readiness.payload import PayloadShape


def sync_overwrites_source(contract: HandoffContract, shape: PayloadShape) -> list[Finding]:
    """One finding per synced field written into the very system that owns its entity (unknown fields aside: they
    are reported as such)."""
    if contract.sync is None:
        return []
    findings = []
    for target in contract.sync.targets:
        for path in target.fields:
            entity = path.split(".", 1)[0]
            owner = contract.source_of_truth.get(entity)
            if owner != target.system or (contract.trigger is not None and not shape.has(path)):
                continue
            findings.append(
                Finding(
                    kind=FindingKind.SYNC_OVERWRITES_SOURCE,
                    contract=contract.name,
                    subject=path,
                    message=(
                        f"{contract.name}: '{path}' is synced to '{owner}', but '{owner}' owns '{entity}' "
                        "(source_of_truth): the handoff would overwrite the source of truth with a copy of its own "
                        f"data. Which system does '{path}' go to? Remove it from the sync to '{owner}', or correct "
                        "the owner."
                    ),
                )
            )
    return findings


def conflicting_owners(contracts: Sequence[HandoffContract]) -> list[list[Finding]]:
    """For each contract (by position), one finding per entity that another contract gives a different owner."""
    claims: dict[str, dict[str, list[str]]] = {}
    for contract in contracts:
        for entity, system in contract.source_of_truth.items():
            claims.setdefault(entity, {}).setdefault(system, []).append(contract.name)
    findings: list[list[Finding]] = []
    for contract in contracts:
        own: list[Finding] = []
        for entity, system in contract.source_of_truth.items():
            by_system = claims[entity]
            if len(by_system) < 2:
                continue
            others = "; ".join(
                f"{_contracts(names)} {'says' if len(names) == 1 else 'say'} '{other}'"
                for other, names in by_system.items()
                if other != system
            )
            own.append(
                Finding(
                    kind=FindingKind.CONFLICTING_SOURCE_OF_TRUTH,
                    contract=contract.name,
                    subject=entity,
                    message=(
                        f"{contract.name}: which system owns '{entity}'? This contract says '{system}', but {others}. "
                        f"One system must own '{entity}' across the catalog, or nobody knows where a wrong value is "
                        "fixed. Agree on one owner and write it in every contract."
                    ),
                )
            )
        findings.append(own)
    return findings


def _contracts(names: list[str]) -> str:
    quoted = ", ".join(f"'{name}'" for name in names)
    return f"contract {quoted}" if len(names) == 1 else f"contracts {quoted}"
