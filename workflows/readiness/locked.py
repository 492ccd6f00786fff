"""A change needs a new version: a contract whose content differs from the same version in the app's lock file.

Runs that started under a version keep its rules to the end, so a version's rules must never change under them;
the lock file (`handoff lock`) records each version's content hash, and the gate compares against it.
"""

from __future__ import annotations

from collections.abc import Mapping

from handoff.schemas.contract import HandoffContract
from handoff.schemas.findings import Finding, FindingKind


def content_changed(contracts: list[HandoffContract], locked: Mapping[tuple[str, int], str]) -> list[Finding]:
    """A finding for each contract whose hash differs from the one locked for its name and version."""
    findings = []
    for contract in contracts:
        was = locked.get((contract.name, contract.version))
        now = contract.content_hash()
        if was is None or was == now:
            continue
        findings.append(
            Finding(
                kind=FindingKind.CHANGED_SINCE_LOCKED,
                contract=contract.name,
                subject=f"v{contract.version}",
                message=(
                    f"{contract.name} v{contract.version} changed since it was locked (hash {was}, now {now}): "
                    f"runs started under v{contract.version} must keep its rules. Bump the version to "
                    f"v{contract.version + 1}, then run `handoff lock`."
                ),
            )
        )
    return findings
