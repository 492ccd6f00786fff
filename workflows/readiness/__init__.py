"""The readiness gate: a handoff whose rules are not written down does not run.

`check_catalog` checks every contract alone (the six questions, unknown fields, rules of the wrong type, rules that
contradict each other, syncs that overwrite their source, escalation chains, synced fields their target cannot hold) and the catalog as a whole (one owner per
entity across contracts). `check_contract` is the same for one contract, without the catalog-wide checks.

Pure and deterministic, no I/O: the CLI, the worker and the tests all call it, and it may run inside a workflow.
"""

from __future__ import annotations

from collections.abc import Mapping

from handoff.schemas.contract import Catalog, HandoffContract
from handoff.schemas.drift import DriftReadability
from handoff.schemas.findings import CatalogReadiness, ContractReadiness, Finding, Registries
from handoff.workflows.readiness.comparisons import contradictory_comparisons
from handoff.workflows.readiness.compensation import undo_findings
from handoff.workflows.readiness.contradictions import contradictory_rules
from handoff.workflows.readiness.drift import drift_check_findings
from handoff.workflows.readiness.escalation import escalation_problems
from handoff.workflows.readiness.fields import unknown_fields
from handoff.workflows.readiness.locked import content_changed
from handoff.workflows.readiness.ownership import conflicting_owners, sync_overwrites_source
from handoff.workflows.readiness.payload import UNKNOWN_PAYLOAD, PayloadShape, shape_of
from handoff.workflows.readiness.questions import unanswered_questions
from handoff.workflows.readiness.registries import registry_findings
from handoff.workflows.readiness.rule_types import rules_of_the_wrong_type
from handoff.workflows.readiness.targets import target_field_findings

__all__ = ["check_catalog", "check_contract", "contract_findings"]


def check_catalog(
    catalog: Catalog,
    *,
    registries: Registries | None = None,
    locked: Mapping[tuple[str, int], str] | None = None,
    drift: DriftReadability | None = None,
) -> CatalogReadiness:
    """Check every contract of the catalog, and the catalog as a whole.

    Args:
        catalog: the groups and contracts to check.
        registries: the look-ups, systems and transforms the app registers; None skips those checks.
        locked: (handoff, version) -> content hash, from the app's lock file; a contract that changed under the same
            version is refused.
        drift: the readers and readable targets the app has, for drift checks; None skips those checks.

    Returns:
        One verdict per contract, in catalog order, each READY when it has no findings.
    """
    groups = catalog.group_names
    across = conflicting_owners(catalog.contracts)
    return CatalogReadiness(
        contracts=[
            _readiness(
                contract,
                [
                    *contract_findings(contract, declared_groups=groups, registries=registries),
                    *catalog_findings,
                    *content_changed([contract], locked or {}),
                    *drift_check_findings(contract, drift),
                ],
            )
            for contract, catalog_findings in zip(catalog.contracts, across, strict=True)
        ]
    )


def check_contract(
    contract: HandoffContract,
    *,
    declared_groups: frozenset[str] | None = None,
    registries: Registries | None = None,
) -> ContractReadiness:
    """Check one contract on its own (not against other contracts' sources of truth).

    Args:
        contract: the contract to check.
        declared_groups: the operator groups that exist; None skips the undeclared-group check.
        registries: the look-ups, systems and transforms the app registers; None skips those checks.
    """
    findings = contract_findings(contract, declared_groups=declared_groups, registries=registries)
    return _readiness(contract, findings)


def contract_findings(
    contract: HandoffContract,
    *,
    declared_groups: frozenset[str] | None = None,
    registries: Registries | None = None,
) -> list[Finding]:
    """Every finding about one contract on its own, in the order of the six questions, then the deeper checks."""
    shape = _shape(contract)
    findings = unanswered_questions(contract, shape)
    if contract.trigger is not None:  # without a payload model, no path can be called unknown
        findings += unknown_fields(contract, shape)
    findings += rules_of_the_wrong_type(contract, shape)
    findings += contradictory_rules(contract, shape)
    findings += contradictory_comparisons(contract, shape)
    findings += sync_overwrites_source(contract, shape)
    findings += escalation_problems(contract, declared_groups)
    findings += undo_findings(contract, registries.methods if registries is not None else None)
    if registries is not None:
        findings += registry_findings(contract, registries)
        findings += target_field_findings(contract, shape, registries.accepts)
    return findings


def _shape(contract: HandoffContract) -> PayloadShape:
    return shape_of(contract.trigger.payload) if contract.trigger is not None else UNKNOWN_PAYLOAD


def _readiness(contract: HandoffContract, findings: list[Finding]) -> ContractReadiness:
    return ContractReadiness(
        contract=contract.name, version=contract.version, content_hash=contract.content_hash(), findings=findings
    )
