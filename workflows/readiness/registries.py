"""Names that must exist outside the contract, in the app that runs it: look-ups, systems, transforms, and the
function a schedule takes its payloads from (with the schedule's own checks, `readiness.schedules`).

A `Lookup` naming a check the app does not register would fail at run time; a source of truth naming a system the
app does not know is a typo; a sync target without an adapter could never be written to; a transform nobody
registered could never run. `handoff check` and the worker pass the same app's `Registries`; without them (a
contract checked on its own) these checks are skipped.
"""

from __future__ import annotations

import difflib

from handoff.schemas.contract import HandoffContract
from handoff.schemas.findings import Finding, FindingKind, Registries
from handoff.schemas.rule_tree import every_rule
from handoff.schemas.rules import Lookup
from handoff.workflows.readiness.schedules import malformed_schedule


def registry_findings(contract: HandoffContract, registries: Registries) -> list[Finding]:
    """Every name the contract uses that the app does not register."""
    return [
        *unknown_lookups(contract, registries.lookups),
        *unknown_systems(contract, registries.systems),
        *targets_without_adapter(contract, registries),
        *unknown_transforms(contract, registries.transforms),
        *malformed_schedule(contract),
        *unknown_schedule_source(contract, registries.scheduled),
    ]


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
                    f"{contract.name}: {placed.where()} asks for the check '{rule.check}', which the app does not "
                    f"register{_did_you_mean(rule.check, known_checks)}, so it could never run. Fix the name, or "
                    f"register the look-up: @app.lookup({rule.check!r})."
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
                f"{contract.name}: '{system}' is named as {', '.join(dict.fromkeys(places))}, but the app knows "
                f"no system by that name{_did_you_mean(system, known_systems)}. Fix the name, or register the "
                f"system: app.system({system!r}, adapter) for a target, app.source({system!r}) for a source."
            ),
        )
        for system, places in named_in.items()
        if system not in known_systems
    ]


def targets_without_adapter(contract: HandoffContract, registries: Registries) -> list[Finding]:
    """One finding per sync target the app knows only as a source: there is nothing to write to it with."""
    targets = contract.sync.targets if contract.sync is not None else ()
    return [
        Finding(
            kind=FindingKind.TARGET_WITHOUT_ADAPTER,
            contract=contract.name,
            subject=target.system,
            message=(
                f"{contract.name}: '{target.system}' is a sync target, but the app registers it as a source only, "
                f"with no adapter to write to it. Register one: app.system({target.system!r}, adapter)."
            ),
        )
        for target in targets
        if target.system in registries.sources and target.system not in registries.targets
    ]


def unknown_transforms(contract: HandoffContract, known_transforms: frozenset[str]) -> list[Finding]:
    """One finding per transform a sync target applies that the app does not register."""
    targets = contract.sync.targets if contract.sync is not None else ()
    return [
        Finding(
            kind=FindingKind.UNKNOWN_TRANSFORM,
            contract=contract.name,
            subject=f"{target.system} / {path}",
            message=(
                f"{contract.name}: the sync to '{target.system}' converts {path} with '{name}', which the app "
                f"does not register{_did_you_mean(name, known_transforms)}. Fix the name, or register it: "
                f"@app.transform({name!r})."
            ),
        )
        for target in targets
        for path, name in target.transforms.items()
        if name not in known_transforms
    ]


def unknown_schedule_source(contract: HandoffContract, known_sources: frozenset[str]) -> list[Finding]:
    """A finding when the trigger's schedule takes its payloads from a function the app does not register."""
    schedule = contract.trigger.schedule if contract.trigger is not None else None
    source = schedule.source if schedule is not None else None
    if not source or source in known_sources:
        return []
    return [
        Finding(
            kind=FindingKind.UNKNOWN_SCHEDULE_SOURCE,
            contract=contract.name,
            subject=f"schedule / {source}",
            message=(
                f"{contract.name}: the schedule takes its payloads from '{source}', which the app does not register"
                f"{_did_you_mean(source, known_sources)}, so every firing would fail. Fix the name, or register the "
                f"function: @app.scheduled({source!r})."
            ),
        )
    ]


def _did_you_mean(name: str, known: frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
