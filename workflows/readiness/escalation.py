"""Escalation chains: every group in a chain must exist, and no group may appear twice.

A case escalates from the owner down the chain as SLAs pass. A group that appears twice gets back a case it already
let lapse (and a chain that loops never reaches its end-of-chain decision); a group the catalog does not declare has
no operators, so its SLA always passes unanswered.
"""

from __future__ import annotations

from handoff.schemas.contract import HandoffContract
from handoff.schemas.findings import Finding, FindingKind


def escalation_problems(contract: HandoffContract, declared_groups: frozenset[str] | None) -> list[Finding]:
    """Loops in the owner + escalation chain; groups the catalog does not declare (when `declared_groups` is given)."""
    policy = contract.exceptions
    if policy is None:
        return []
    chain = policy.chain
    findings = [
        Finding(
            kind=FindingKind.ESCALATION_LOOP,
            contract=contract.name,
            subject=group,
            message=(
                f"{contract.name}: the escalation chain {' -> '.join(chain)} names '{group}' {chain.count(group)} "
                "times: a case would come back to a group that already let its SLA pass. Who takes over after "
                "each group? Name every group once."
            ),
        )
        for group in dict.fromkeys(chain)
        if chain.count(group) > 1
    ]
    if declared_groups is None:
        return findings
    known = ", ".join(sorted(declared_groups)) or "none"
    for group in dict.fromkeys(chain):
        if group in declared_groups:
            continue
        role = "the exception owner" if group == policy.owner else "an escalation step"
        findings.append(
            Finding(
                kind=FindingKind.UNDECLARED_GROUP,
                contract=contract.name,
                subject=group,
                message=(
                    f"{contract.name}: '{group}' is {role}, but the catalog declares no operator group by that name "
                    f"(declared: {known}), so nobody could decide its cases. Declare the group in the catalog, or "
                    "fix the name."
                ),
            )
        )
    return findings
