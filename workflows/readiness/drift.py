"""A drift check the app can run: a clock Temporal takes, a reader for each source of truth, a `read` on every target.

A check compares each target's copy with its source's current record; without a reader for the system that owns a
synced entity (`@app.reader`), or an adapter that can read its copies back (`read(record_key)`), it would compare
nothing and report no drift, which reads as "all in step". The gate says so before anything runs. Pure: it may run
inside a workflow.
"""

from __future__ import annotations

from datetime import timedelta

from handoff.schemas.contract import DriftCheck, HandoffContract
from handoff.schemas.drift import DriftReadability
from handoff.schemas.findings import Finding, FindingKind

MAX_LIMIT = 10_000
"""The most runs one check compares: each is a read of the source and of every target."""


def drift_check_findings(contract: HandoffContract, readability: DriftReadability | None) -> list[Finding]:
    """What keeps the contract's drift check from running, if it has one; `readability` None skips the app's side."""
    check = contract.sync.drift_check if contract.sync is not None else None
    if check is None or contract.sync is None:
        return []
    findings = [_finding(contract, "drift_check", problem) for problem in drift_check_problems(check)]
    if readability is None:
        return findings
    for system in owners_of_synced_fields(contract):
        if system not in readability.readers:
            findings.append(
                _finding(
                    contract,
                    f"drift_check / {system}",
                    f"the drift check reads the source of truth {system!r}, and the app registers no reader for it: "
                    f"add @app.reader({system!r}), a function from the dedupe key's value to the record as the "
                    "trigger's payload has it (None when it is gone)",
                    kind=FindingKind.UNKNOWN_SCHEDULE_SOURCE,
                )
            )
    for target in contract.sync.targets:
        if target.system not in readability.readable_targets:
            findings.append(
                _finding(
                    contract,
                    f"drift_check / {target.system}",
                    f"the drift check reads the copies in {target.system!r} back, and its adapter has no "
                    "read(record_key) method: add one returning the record written under that key (None when gone)",
                    kind=FindingKind.UNKNOWN_SCHEDULE_SOURCE,
                )
            )
    return findings


def drift_check_problems(check: DriftCheck) -> list[str]:
    """Each thing Temporal, or a check, could not work with, in words; empty when the check can run."""
    problems = []
    if check.every < timedelta(seconds=1):
        problems.append(f"every={check.every} is not an interval Temporal runs: one second at least")
    if check.lookback <= timedelta(0):
        problems.append(f"lookback={check.lookback} reaches back to nothing: give it a positive span, e.g. 7 days")
    if not 1 <= check.limit <= MAX_LIMIT:
        problems.append(f"limit={check.limit} is not between 1 and {MAX_LIMIT} runs per check")
    return problems


def owners_of_synced_fields(contract: HandoffContract) -> list[str]:
    """The systems of truth of the entities the contract syncs, in the order the targets name them."""
    owners: dict[str, None] = {}
    for target in contract.sync.targets if contract.sync is not None else ():
        for path in target.fields:
            owner = contract.source_of_truth.get(path.split(".", 1)[0])
            if owner is not None:  # an entity without an owner is the questions' finding already
                owners[owner] = None
    return list(owners)


def _finding(
    contract: HandoffContract, subject: str, problem: str, *, kind: FindingKind = FindingKind.MALFORMED_SCHEDULE
) -> Finding:
    return Finding(
        kind=kind,
        contract=contract.name,
        subject=subject,
        message=f"{contract.name}: the sync's drift check cannot run: {problem}.",
    )
