"""The gate checks undo methods: the adapter must have the one a `SyncTarget.undo` names, and only an ordered sync
ever calls one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handoff import Handoffs, WriteOutcome
from handoff.schemas.contract import Sync, SyncTarget
from handoff.schemas.findings import FindingKind, Registries
from tests.workflows.sample_contracts import GROUPS, NAME, found, ready_contract
from tests.workflows.sample_contracts import check as gate

FIELDS = ("booking.id", "booking.party_size")


class _CancellingPos:
    """A POS adapter that can undo a write (`cancel`)."""

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        return WriteOutcome.WRITTEN

    def cancel(self, record_key: str) -> None:
        return None


def _sync(*, ordered: bool, undo: str | None) -> Sync:
    return Sync(targets=(SyncTarget(system="pos", fields=FIELDS, undo=undo),), ordered=ordered)


def _registries(*methods: str) -> Registries:
    return Registries(
        sources=frozenset({"bookings"}), targets=frozenset({"pos"}), methods={"pos": frozenset({"write", *methods})}
    )


def test_an_ordered_sync_whose_undo_the_adapter_has_is_ready() -> None:
    """No finding when the adapter has the method an ordered sync's target names."""
    assert [] == found(gate(ready_contract(sync=_sync(ordered=True, undo="cancel")), registries=_registries("cancel")))


def test_an_undo_the_adapter_lacks_is_a_finding_naming_the_methods_it_has() -> None:
    """`undo="cancel"` on an adapter without `cancel` would fail the day it is needed: the gate says so first."""
    readiness = gate(ready_contract(sync=_sync(ordered=True, undo="cancel")), registries=_registries("void"))

    assert [(FindingKind.UNKNOWN_UNDO, NAME, "pos")] == found(readiness)
    message = readiness.findings[0].message
    assert "cancel(record_key)" in message and "its methods: void, write" in message


def test_an_undo_in_a_sync_that_is_not_ordered_is_a_finding_with_or_without_registries() -> None:
    """Parallel delivery never undoes: declaring an undo there promises what delivery does not do."""
    contract = ready_contract(sync=_sync(ordered=False, undo="cancel"))

    assert [(FindingKind.UNDO_WITHOUT_ORDER, NAME, "pos")] == found(gate(contract))
    assert [(FindingKind.UNDO_WITHOUT_ORDER, NAME, "pos")] == found(gate(contract, registries=_registries("cancel")))
    assert "Sync(ordered=True)" in gate(contract).findings[0].message


def test_an_ordered_sync_without_undo_and_registries_without_methods_find_nothing() -> None:
    """Ordering alone asks for nothing; registries that do not list methods skip the method check."""
    assert [] == found(gate(ready_contract(sync=_sync(ordered=True, undo=None)), registries=_registries()))
    no_methods = Registries(sources=frozenset({"bookings"}), targets=frozenset({"pos"}))
    assert [] == found(gate(ready_contract(sync=_sync(ordered=True, undo="cancel")), registries=no_methods))


def test_the_app_reads_its_adapters_methods_for_the_gate() -> None:
    """`handoff check` and the worker see the registered adapter's methods: a missing undo stops the app."""
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(sync=_sync(ordered=True, undo="refund")),))
    app.source("bookings")
    app.system("pos", _CancellingPos())

    assert app.registries.methods is not None and {"write", "cancel"} <= app.registries.methods["pos"]
    assert [(FindingKind.UNKNOWN_UNDO, NAME, "pos")] == found(app.readiness())


def test_an_ordered_sync_with_undo_keeps_the_hash_of_contracts_that_declare_neither() -> None:
    """The new fields default to what contracts without them meant: their content hash (and lock file) stays."""
    plain = ready_contract(sync=Sync(targets=(SyncTarget(system="pos", fields=FIELDS),)))
    spelled_out = ready_contract(sync=_sync(ordered=False, undo=None))

    assert plain.content_hash() == spelled_out.content_hash()
    assert plain.content_hash() != ready_contract(sync=_sync(ordered=True, undo=None)).content_hash()
