"""Names that must exist outside the contract: validation checks for `Lookup` rules, and business systems.

A `Lookup` naming a check no activity provides would fail at run time; a sync or source of truth naming a system
without an adapter could never be written to or corrected in. The worker knows both registries and passes them in;
without them these checks are skipped.
"""

from __future__ import annotations

import difflib

from schemas.contract import HandoffContract
from schemas.findings import Finding, FindingKind
from schemas.rules import Lookup
from workflows.readiness.rule_tree import every_rule


def unknown_lookups(contract: HandoffContract, known_checks: frozenset[str]) -> list[Finding]:
    """One finding per `Lookup` (inside `When`s too) whose check is not in `known_checks`."""
    findings = []
    for placed in every_rule(contract.rules):
        rule = placed.rule
        if not isinstance(rule, Lookup) or rule.check in known_checks:
            continue
        findings.append(
            Finding(
                kind=FindingKind.UNKNOWN_LOOKUP,
                contract=contract.name,
                subject=rule.label,
                message=(
                    f"{contract.name}: {placed.where()} asks for the check '{rule.check}', which no validation "
                    f"activity provides{_did_you_mean(rule.check, known_checks)}, so it could never run. Fix the "
                    "name, or write and register the check."
                ),
            )
        )
    return findings


def unknown_systems(contract: HandoffContract, known_systems: frozenset[str]) -> list[Finding]:
    """One finding per system named in source_of_truth or the sync that is not in `known_systems`."""
    named_in: dict[str, list[str]] = {}
    for entity, system in contract.source_of_truth.items():
        named_in.setdefault(system, []).append(f"the owner of '{entity}'")
    if contract.sync is not None:
        for target in contract.sync.targets:
            named_in.setdefault(target.system, []).append("a sync target")
    return [
        Finding(
            kind=FindingKind.UNKNOWN_SYSTEM,
            contract=contract.name,
            subject=system,
            message=(
                f"{contract.name}: '{system}' is named as {', '.join(dict.fromkeys(places))}, but no adapter "
                f"connects to a system by that name{_did_you_mean(system, known_systems)}. Fix the name, or add "
                "an adapter for the system."
            ),
        )
        for system, places in named_in.items()
        if system not in known_systems
    ]


def _did_you_mean(name: str, known: frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
