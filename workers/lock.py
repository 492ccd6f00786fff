"""The lock file: every contract version an app has shipped, with its hash and its rules, committed with the code.

    handoff lock --app clinic:app          # writes the app's lock file (Handoffs(lock_file=...))

Two jobs. A rule change needs a new version: the gate refuses a contract whose content changed while its version
did not ("reservation-to-pos v1 changed since it was locked: bump the version"). And a run keeps the rules it
started under: the lock holds each version's declarative part (rules, sync, exceptions, sources of truth, gain),
so a worker whose code has moved on to v2 still finishes the runs that started under v1, exactly as they began.

Versions stay in the lock after the code moves on; `handoff lock` never drops one that still has open runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from handoff.schemas.contract import HandoffContract, model_fingerprint

LOCK_FORMAT = 1


class LockedVersion(BaseModel):
    """One contract version as it was locked."""

    hash: str
    contract: dict[str, Any]
    """`HandoffContract.model_dump(mode="json")`: the payload model appears as its fingerprint."""


class LockFile(BaseModel):
    """The lock: handoff name -> version (as text, for JSON) -> what it was."""

    format: int = LOCK_FORMAT
    handoffs: dict[str, dict[str, LockedVersion]] = {}

    def locked(self, name: str, version: int) -> LockedVersion | None:
        return self.handoffs.get(name, {}).get(str(version))

    def hashes(self) -> dict[tuple[str, int], str]:
        """(handoff, version) -> the content hash it was locked with: what the readiness gate compares."""
        return {
            (name, int(version)): locked.hash
            for name, versions in self.handoffs.items()
            for version, locked in versions.items()
        }

    def with_contracts(self, contracts: list[HandoffContract]) -> LockFile:
        """This lock plus every contract version not in it yet (a locked version is never rewritten here)."""
        handoffs = {name: dict(versions) for name, versions in self.handoffs.items()}
        for contract in contracts:
            versions = handoffs.setdefault(contract.name, {})
            versions.setdefault(
                str(contract.version),
                LockedVersion(hash=contract.content_hash(), contract=contract.model_dump(mode="json")),
            )
        return LockFile(handoffs=handoffs)


class LockProblem(Exception):
    """The lock file cannot be read: what is wrong and where."""


def read_lock(path: Path) -> LockFile:
    """The lock at `path`; an empty lock when there is no file yet."""
    if not path.exists():
        return LockFile()
    try:
        return LockFile.model_validate_json(path.read_text())
    except (ValidationError, ValueError) as error:
        raise LockProblem(f"{path} is not a Handoff lock file: {error}") from None


def write_lock(path: Path, lock: LockFile) -> None:
    """Write the lock, sorted and indented, so a change shows as a readable diff in review."""
    data = lock.model_dump(mode="json")
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def earlier_versions(contracts: list[HandoffContract], lock: LockFile) -> list[HandoffContract]:
    """The locked versions older than the app's, rebuilt from the lock, for the runs that started under them.

    A version is rebuilt on the app's current payload model, so only when that model is unchanged (same
    fingerprint); otherwise the app must keep that version itself (`app.add(old_contract)`).
    """
    rebuilt = []
    for contract in contracts:
        for version, locked in sorted(lock.handoffs.get(contract.name, {}).items(), key=lambda item: int(item[0])):
            if int(version) >= contract.version:
                continue
            old = _rebuilt(contract, locked)
            if old is not None:
                rebuilt.append(old)
    return rebuilt


def _rebuilt(current: HandoffContract, locked: LockedVersion) -> HandoffContract | None:
    data = dict(locked.contract)
    trigger = data.get("trigger")
    if current.trigger is None or not isinstance(trigger, dict):
        return None
    if trigger.get("payload") != model_fingerprint(current.trigger.payload):
        return None
    data["trigger"] = {**trigger, "payload": current.trigger.payload}
    try:
        contract = HandoffContract.model_validate(data)
    except ValidationError:
        return None
    return contract if contract.content_hash() == locked.hash else None
