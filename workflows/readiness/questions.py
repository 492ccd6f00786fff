"""The six questions every handoff must answer in writing, and the findings for those left open.

1. Which event triggers it, and what makes an event unique (the dedupe key)?
2. Which system owns each entity the payload carries, including every entity whose fields are synced?
3. Which fields go to which system?
4. What happens to incomplete or inconsistent data (rules)?
5. Who owns an exception case, and what is decided when the whole escalation chain stays silent?
6. Which measurable gain is expected, and what target must it reach?

Each message names the question in the words a business owner would use, then what to write in the contract.
"""

from __future__ import annotations

from handoff.schemas.contract import DecisionKind, HandoffContract
from handoff.schemas.findings import Finding, FindingKind
from handoff.workflows.readiness.payload import PayloadShape, ValueKind


def unanswered_questions(contract: HandoffContract, shape: PayloadShape) -> list[Finding]:
    """One finding per question the contract leaves open, in the order of the six questions."""
    return [
        *_trigger(contract, shape),
        *_owners(contract, shape),
        *_sync(contract),
        *_rules(contract),
        *_exceptions(contract),
        *_gain(contract),
    ]


def _finding(contract: HandoffContract, kind: FindingKind, subject: str, message: str) -> Finding:
    return Finding(kind=kind, contract=contract.name, subject=subject, message=f"{contract.name}: {message}")


def _trigger(contract: HandoffContract, shape: PayloadShape) -> list[Finding]:
    trigger = contract.trigger
    if trigger is None:
        return [
            _finding(
                contract,
                FindingKind.NO_TRIGGER,
                "trigger",
                "which event starts this handoff? The contract has no trigger. Add "
                "trigger=Trigger(event='entity.happened', payload=<payload model>, dedupe_key='entity.id').",
            )
        ]
    key = trigger.dedupe_key
    if key is None:
        return [
            _finding(
                contract,
                FindingKind.NO_DEDUPE_KEY,
                "trigger.dedupe_key",
                f"what makes a '{trigger.event}' event unique? The trigger has no dedupe key, so a repeated event "
                "would start a second run. Set trigger.dedupe_key to a field every event carries, such as the entity's id.",
            )
        ]
    if not shape.has(key):
        return [
            _finding(
                contract,
                FindingKind.NO_DEDUPE_KEY,
                key,
                f"the dedupe key '{key}' is not a field of the payload model {shape.model_name}, so nothing makes a "
                f"'{trigger.event}' event unique. Name an `entity.field` path of the payload, such as the entity's id.",
            )
        ]
    field = shape.fields.get(key)
    if field is None:  # inside a part of the payload the gate cannot see (a dict): trust it
        return []
    if field.kinds & {ValueKind.COLLECTION, ValueKind.MODEL}:
        return [
            _finding(
                contract,
                FindingKind.NO_DEDUPE_KEY,
                key,
                f"the dedupe key '{key}' is a list or a record, not a value that names one event. "
                "Name a single field, such as the entity's id.",
            )
        ]
    if not field.always_present:
        return [
            _finding(
                contract,
                FindingKind.NO_DEDUPE_KEY,
                key,
                f"the dedupe key '{key}' may be missing from a '{trigger.event}' event: the payload model "
                f"{shape.model_name} lets it (or its entity) be empty or defaulted, and every event without it would "
                "share one run. Make it a required, non-optional field of the payload model.",
            )
        ]
    return []


def _owners(contract: HandoffContract, shape: PayloadShape) -> list[Finding]:
    owners = contract.source_of_truth
    findings = [
        _finding(
            contract,
            FindingKind.ENTITY_WITHOUT_OWNER,
            entity,
            f"which system owns '{entity}'? The payload carries the entity '{entity}', but source_of_truth names "
            f"no system for it, so nobody knows where a correction must be made. Add '{entity}': '<system>' to "
            "source_of_truth.",
        )
        for entity in shape.entities
        if entity not in owners
    ]
    if contract.sync is None:
        return findings
    synced_to: dict[str, list[str]] = {}
    for target in contract.sync.targets:
        for path in target.fields:
            entity = path.split(".", 1)[0]
            if entity not in owners and (contract.trigger is None or shape.has(path)):
                synced_to.setdefault(path, []).append(target.system)
    for path, systems in synced_to.items():
        entity = path.split(".", 1)[0]
        findings.append(
            _finding(
                contract,
                FindingKind.SYNCED_FIELD_WITHOUT_OWNER,
                path,
                f"'{path}' is synced to {', '.join(repr(system) for system in dict.fromkeys(systems))}, but which "
                f"system owns '{entity}'? source_of_truth names none, so a wrong value has no place to be fixed. "
                f"Add '{entity}': '<system>' to source_of_truth.",
            )
        )
    return findings


def _sync(contract: HandoffContract) -> list[Finding]:
    sync = contract.sync
    if sync is None or not sync.targets:
        return [
            _finding(
                contract,
                FindingKind.NO_SYNC,
                "sync",
                "which fields go to which system? The contract syncs nothing. Add "
                "sync=Sync(targets=(SyncTarget(system='<system>', fields=(...)),), local=(...)).",
            )
        ]
    return [
        _finding(
            contract,
            FindingKind.NO_SYNC,
            target.system,
            f"which fields go to '{target.system}'? Its sync target lists none. List them, or remove the target.",
        )
        for target in sync.targets
        if not target.fields
    ]


def _rules(contract: HandoffContract) -> list[Finding]:
    if contract.rules:
        return []
    return [
        _finding(
            contract,
            FindingKind.NO_RULES,
            "rules",
            "what happens when the data is incomplete or inconsistent? The contract has no rules, so every event "
            "would be delivered as it comes. Add rules (Required, Min, Max, MaxLength, OneOf, Pattern, Compare, When, Lookup).",
        )
    ]


def _exceptions(contract: HandoffContract) -> list[Finding]:
    policy = contract.exceptions
    if policy is None:
        return [
            _finding(
                contract,
                FindingKind.NO_EXCEPTION_OWNER,
                "exceptions",
                "who decides when the data breaks a rule, and what happens when nobody does? The contract has no "
                "exception policy. Add exceptions=ExceptionPolicy(owner='<group>', escalation=(...), "
                "on_timeout=DecisionKind.REJECT).",
            )
        ]
    findings = []
    if policy.owner is None:
        findings.append(
            _finding(
                contract,
                FindingKind.NO_EXCEPTION_OWNER,
                "exceptions.owner",
                "which group decides exception cases first? The exception policy has no owner. Set exceptions.owner to "
                "an operator group of the catalog.",
            )
        )
    if policy.on_timeout is None:
        findings.append(
            _finding(
                contract,
                FindingKind.NO_TIMEOUT_DECISION,
                "exceptions.on_timeout",
                "what is decided when the last group of the escalation chain lets its SLA pass too? The exception "
                "policy has no end-of-chain decision, so a case could stay open forever. Set exceptions.on_timeout "
                "(usually DecisionKind.REJECT).",
            )
        )
    elif policy.on_timeout is DecisionKind.CORRECT:
        findings.append(
            _finding(
                contract,
                FindingKind.NO_TIMEOUT_DECISION,
                "exceptions.on_timeout",
                "the end-of-chain decision is 'correct', but a correction needs someone to write the corrected "
                "values, and nobody answered. Set exceptions.on_timeout to 'approve' or 'reject'.",
            )
        )
    return findings


def _gain(contract: HandoffContract) -> list[Finding]:
    gain = contract.gain
    if gain is None:
        return [
            _finding(
                contract,
                FindingKind.NO_GAIN_TARGET,
                "gain",
                "which measurable gain is this handoff for? The contract states none. Add gain=Gain(metric=..., "
                "unit=..., measure=..., baseline=<today's figure>, target=<the figure to reach>).",
            )
        ]
    if gain.target is None:
        return [
            _finding(
                contract,
                FindingKind.NO_GAIN_TARGET,
                "gain.target",
                f"what figure must '{gain.metric}' reach? The gain has a baseline ({gain.baseline:g} {gain.unit}) "
                "but no target. Set gain.target to the figure to reach.",
            )
        ]
    if gain.target >= gain.baseline:
        return [
            _finding(
                contract,
                FindingKind.NO_GAIN_TARGET,
                "gain.target",
                f"the target for '{gain.metric}' ({gain.target:g} {gain.unit}) is not below the baseline "
                f"({gain.baseline:g}), and lower is better for {gain.measure.value}: this target is no gain. "
                "Set gain.target below the baseline.",
            )
        ]
    return []
