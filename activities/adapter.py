"""The one interface every business system is reached through: a user's adapter, registered with `app.system`.

Delivery calls `write` once per run and target system, keyed by the run's workflow id; a retried activity calls it
again with the same key, so `write` must be idempotent (an upsert by key, or an idempotency key the system's API
honours). `write` may be a plain or an async method: a real API is best reached with an async HTTP client.

The errors here are the system refusing the data: retrying cannot fix them, so delivery answers them at once and the
run opens an exception case with their message, for a person to correct the field, retry or reject. Any other error
(a timeout, a connection reset) is retried, up to the target's `attempts`; then that too becomes a case.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from enum import StrEnum
from typing import Any, Protocol


class WriteOutcome(StrEnum):
    """What a `write` did."""

    WRITTEN = "written"
    """The record was new: the system now holds it."""
    ALREADY_WRITTEN = "already-written"
    """A record with this key was written before (a retry or a concurrent writer): nothing changed."""


class SystemAdapter(Protocol):
    """A business system, as delivery sees it: write a record once. (Reading it back is optional: `read`.)

    An adapter may also say what its system accepts, as an attribute `accepts`: a mapping of field name to
    `TargetField` (`{"guest_name": TargetField.text(max_length=255)}`). The readiness gate then checks every field a
    contract syncs to the system against it, so a value the system could not store is stopped by a rule first.

    An adapter may also undo a run's write, for contracts that deliver in order (`Sync(ordered=True)`) and name the
    method in `SyncTarget(undo="cancel")`: `cancel(record_key)`, plain or async, called when a later target does not
    take the record. It must be idempotent like `write`: undoing twice (a retry after a crash), or undoing a key that
    was never written, is harmless. After an undo the key is free again: a later `write` with the same key (the
    run delivered again after a decision) must write the record again, not answer `ALREADY_WRITTEN`. Anything it
    raises is retried, as often as the target's `attempts`; then the write stays, and the case says so.
    """

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome | Awaitable[WriteOutcome]:
        """Store `fields` under `record_key` unless a record with that key exists.

        Raises:
            UnknownField: a field the system has no place for.
            InvalidFieldValue: a value the system cannot store in its field.
        """
        ...


class UnknownField(Exception):
    """`write` was given a field the target system has no column for."""

    def __init__(self, system: str, fields: Sequence[str], known: Sequence[str]) -> None:
        self.system = system
        self.fields = tuple(fields)
        self.known = tuple(known)
        names = ", ".join(repr(name) for name in self.fields)
        super().__init__(
            f"the {system} system has no field {names} (its fields: {', '.join(self.known)}); "
            f"rename the field in the contract's SyncTarget for {system!r}, or stop syncing it"
        )

    def __reduce__(self) -> tuple[type[UnknownField], tuple[str, tuple[str, ...], tuple[str, ...]]]:
        return type(self), (self.system, self.fields, self.known)


class InvalidFieldValue(Exception):
    """`write` was given a value the target system cannot store in that field (wrong type, too long, missing)."""

    def __init__(self, system: str, field: str, value: Any, expected: str) -> None:
        self.system = system
        self.field = field
        self.value = value
        self.expected = expected
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"the {system} system cannot store {shown} in {field!r}: it expects {expected}")

    def __reduce__(self) -> tuple[type[InvalidFieldValue], tuple[str, str, Any, str]]:
        return type(self), (self.system, self.field, self.value, self.expected)
