"""The contracts this process's workers run, where the handoff workflow finds its own.

The workflow cannot import a user's package: the sandbox re-imports workflow modules for every run, and the engine
knows no user by name. So the app's plugin registers its contracts here when a worker is built, and the workflow
module imports this module *passed through* the sandbox, sharing this one registry with the host.

Contracts are immutable and keyed by name and version: two apps in one process may register the same contract, but
never two different contracts under one name and version (a rule change is a new version).
"""

from __future__ import annotations

from handoff.schemas.contract import HandoffContract

_CONTRACTS: dict[tuple[str, int], HandoffContract] = {}


class ConflictingContract(ValueError):
    """Another contract is registered under the same name and version."""


def register(contract: HandoffContract) -> None:
    """Make `contract` findable by the workflow; the same contract again is a no-op."""
    key = (contract.name, contract.version)
    known = _CONTRACTS.get(key)
    if known is not None and known.content_hash() != contract.content_hash():
        raise ConflictingContract(
            f"{contract.name} v{contract.version} is already registered in this process with other rules "
            f"(hash {known.content_hash()}, now {contract.content_hash()}): a rule change needs a new version."
        )
    _CONTRACTS[key] = contract


def registered(name: str, version: int | None = None) -> HandoffContract | None:
    """The contract `name` at `version`, or its newest version when `version` is None; None when unknown."""
    if version is not None:
        return _CONTRACTS.get((name, version))
    versions = [contract for (known, _), contract in _CONTRACTS.items() if known == name]
    return max(versions, key=lambda contract: contract.version, default=None)
