"""`entity.field` paths: how the contract language names a field of a payload, and the two things done with one.

Shared by the workflow (rules, corrections, delivery), the edge (dedupe keys) and the ledger's reads (the payload
after its corrections), so a path means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def value_at(payload: Mapping[str, Any], path: str) -> Any:
    """The value at an `entity.field` path, or None when any step of the path is missing."""
    current: Any = payload
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part, _MISSING)
        if current is _MISSING:
            return None
    return current


def patched(payload: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the payload with each `entity.field` path in `patch` set to its new value (for 'correct')."""
    result: dict[str, Any] = _deep_copy(payload)
    for path, value in patch.items():
        *parents, leaf = path.split(".")
        node = result
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[leaf] = value
    return result


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value
