"""The contracts this process's workers run, where the handoff workflow finds its own.

The workflow cannot import a user's package: the sandbox re-imports workflow modules for every run, and the engine
knows no user by name. So the app's plugin registers its contracts here when a worker is built, under the worker's
task queue, and the workflow module imports this module *passed through* the sandbox, sharing this one registry
with the host. A run looks its contract up by the task queue it runs on (fixed in its history), so a worker never
runs a contract its own app does not hold, even with other apps' workers in the same process.

A replayer has no task queue: while it replays, its contracts are registered without one, and found for any run.
Contracts are immutable and keyed by name and version: a rule change is a new version.
"""

from __future__ import annotations

from handoff.schemas.contract import HandoffContract

_CONTRACTS: dict[tuple[str | None, str, int], HandoffContract] = {}


class ConflictingContract(ValueError):
    """Another contract is registered under the same task queue, name and version."""


def register(contract: HandoffContract, task_queue: str | None) -> None:
    """Make `contract` findable by runs on `task_queue` (None: by a replayer); the same contract again is a no-op."""
    key = (task_queue, contract.name, contract.version)
    known = _CONTRACTS.get(key)
    if known is not None and known.content_hash() != contract.content_hash():
        where = f"on task queue {task_queue!r}" if task_queue else "for replay"
        raise ConflictingContract(
            f"{contract.name} v{contract.version} is already registered {where} with other rules (hash "
            f"{known.content_hash()}, now {contract.content_hash()}): a rule change needs a new version, and two "
            "apps on one task queue must agree on their contracts."
        )
    _CONTRACTS[key] = contract


def forget(contracts: list[HandoffContract], task_queue: str | None) -> None:
    """Undo `register` (a replayer's contracts, once it has replayed)."""
    for contract in contracts:
        _CONTRACTS.pop((task_queue, contract.name, contract.version), None)


def registered(task_queue: str, name: str, version: int | None = None) -> HandoffContract | None:
    """The contract `name` at `version` (its newest when None) for a run on `task_queue`; None when unknown."""
    for queue in (task_queue, None):
        versions = {v: contract for (q, n, v), contract in _CONTRACTS.items() if q == queue and n == name}
        if not versions:
            continue
        if version is None:
            return versions[max(versions)]
        return versions.get(version)
    return None
