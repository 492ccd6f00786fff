"""The readiness gate on drift checks: a check needs a reader for every source of truth of the synced entities, a
`read` on every target's adapter, and a clock Temporal runs; a contract without one is as it was (hash included)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from handoff import DriftCheck, Handoffs, WriteOutcome
from handoff.schemas.contract import Sync, SyncTarget
from handoff.schemas.drift import DriftReadability
from handoff.schemas.findings import FindingKind
from tests.workflows.sample_contracts import GROUPS, NAME, check, found, ready_contract

EVERY_HOUR = DriftCheck(every=timedelta(hours=1))
READABLE = DriftReadability(readers=frozenset({"bookings"}), readable_targets=frozenset({"pos"}))


def _checked(drift_check: DriftCheck | None = EVERY_HOUR) -> Any:
    sync = ready_contract().sync
    assert sync is not None
    return ready_contract(sync=sync.model_copy(update={"drift_check": drift_check}))


def test_a_drift_check_the_app_can_read_is_ready() -> None:
    """A reader for the bookings system and a readable POS: nothing to find."""
    assert [] == found(check(_checked(), drift=READABLE))


def test_a_drift_check_without_a_reader_for_the_source_of_truth_is_not_ready() -> None:
    """The check would compare nothing: the finding names the system and the decorator to add."""
    readiness = check(_checked(), drift=DriftReadability(readable_targets=frozenset({"pos"})))

    assert [(FindingKind.UNKNOWN_SCHEDULE_SOURCE, NAME, "drift_check / bookings")] == found(readiness)
    assert "@app.reader('bookings')" in readiness.findings[0].message


def test_a_drift_check_with_a_target_that_cannot_read_its_copies_is_not_ready() -> None:
    """Every target's adapter must read back what it was written."""
    readiness = check(_checked(), drift=DriftReadability(readers=frozenset({"bookings"})))

    assert [(FindingKind.UNKNOWN_SCHEDULE_SOURCE, NAME, "drift_check / pos")] == found(readiness)
    assert "read(record_key)" in readiness.findings[0].message


def test_a_drift_check_Temporal_could_not_run_names_each_problem() -> None:
    """A clock under a second, a lookback of nothing and a limit out of range are each a finding."""
    malformed = DriftCheck(every=timedelta(0), lookback=timedelta(0), limit=0)
    readiness = check(_checked(malformed), drift=READABLE)

    assert [(FindingKind.MALFORMED_SCHEDULE, NAME, "drift_check")] * 3 == found(readiness)
    messages = " ".join(finding.message for finding in readiness.findings)
    assert "every=0:00:00" in messages and "lookback=0:00:00" in messages and "limit=0" in messages


def test_a_contract_without_a_drift_check_needs_no_reader_and_keeps_its_hash() -> None:
    """No drift check, no drift findings; and a sync that says nothing of drift hashes as it did before."""
    assert [] == found(check(_checked(None), drift=DriftReadability()))
    assert ready_contract().content_hash() == _checked(None).content_hash()
    assert ready_contract().content_hash() != _checked().content_hash()  # a drift check is part of the contract


class _Pos:
    def __init__(self, *, readable: bool) -> None:
        if readable:
            self.read = lambda record_key: None

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        return WriteOutcome.WRITTEN


def test_the_app_gives_the_gate_its_readers_and_readable_targets() -> None:
    """`app.reader` and an adapter's `read` are what the gate counts; `handoff check` and the worker agree."""
    contract = _checked()
    unreadable = Handoffs(groups=GROUPS, contracts=(contract,))
    unreadable.source("bookings")
    unreadable.system("pos", _Pos(readable=False))
    readable = Handoffs(groups=GROUPS, contracts=(contract,))
    readable.source("bookings")
    readable.system("pos", _Pos(readable=True))
    readable.reader("bookings")(lambda key: None)

    assert {"drift_check / bookings", "drift_check / pos"} == {f.subject for f in unreadable.readiness().findings}
    assert readable.readiness().ready
    assert DriftReadability(readers=frozenset({"bookings"}), readable_targets=frozenset({"pos"})) == (
        readable.drift_readability
    )


def test_a_second_reader_for_one_system_is_refused() -> None:
    """One reader per system, as for every registered name."""
    app = Handoffs(groups=GROUPS)
    app.reader("bookings")(lambda key: None)
    with pytest.raises(ValueError, match="already registers 'bookings'"):
        app.reader("bookings")


def test_a_drift_check_reads_every_owner_of_the_synced_entities() -> None:
    """Entities owned by two systems need a reader each."""
    sync = Sync(
        targets=(SyncTarget(system="pos", fields=("booking.id", "guest.name")),),
        drift_check=EVERY_HOUR,
    )
    contract = ready_contract(sync=sync, source_of_truth={"booking": "bookings", "guest": "crm"})
    readiness = check(contract, drift=READABLE)

    assert [(FindingKind.UNKNOWN_SCHEDULE_SOURCE, NAME, "drift_check / crm")] == found(readiness)
