"""The readiness gate on a trigger's schedule: one readable clock, and a payload function the app registers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from handoff.schemas.contract import Schedule, Trigger
from handoff.schemas.findings import FindingKind, Registries
from handoff.workflows.readiness.schedules import cron_problem
from tests.workflows.sample_contracts import NAME, BookingConfirmed, check, found, ready_contract

REGISTRIES = Registries(
    sources=frozenset({"bookings"}), targets=frozenset({"pos"}), scheduled=frozenset({"closed_bookings"})
)


def _scheduled(schedule: Schedule | str) -> Any:
    trigger = Trigger(event="booking.confirmed", payload=BookingConfirmed, dedupe_key="booking.id", schedule=schedule)
    return ready_contract(trigger=trigger)


def test_a_schedule_with_a_readable_clock_and_a_registered_source_is_ready() -> None:
    """A cron or an interval, taking payloads from a registered function, leaves the contract READY."""
    cron = _scheduled(Schedule(cron="0 6 * * mon-fri", source="closed_bookings"))
    every = _scheduled(Schedule(every=timedelta(minutes=15), source="closed_bookings"))

    assert [] == found(check(cron, registries=REGISTRIES))
    assert [] == found(check(every, registries=REGISTRIES))


def test_a_schedule_naming_a_function_the_app_does_not_register_is_found() -> None:
    """The finding names the function, suggests the close one, and says how to register it."""
    contract = _scheduled(Schedule(cron="@daily", source="closed_booking"))

    readiness = check(contract, registries=REGISTRIES)

    assert [(FindingKind.UNKNOWN_SCHEDULE_SOURCE, NAME, "schedule / closed_booking")] == found(readiness)
    message = readiness.findings[0].message
    assert "did you mean 'closed_bookings'?" in message and "@app.scheduled('closed_booking')" in message


@pytest.mark.parametrize(
    ("cron", "said"),
    [
        ("61 * * * *", "the minute field '61': '61' is not between 0 and 59"),
        ("0 6 * *", "it has 4 field(s)"),
        ("0 6 * * funday", "the day of week field 'funday'"),
        ("*/0 * * * *", "the step '0' is not a positive number"),
        ("@fortnightly", "@fortnightly is not one of"),
    ],
)
def test_a_cron_temporal_cannot_read_is_found(cron: str, said: str) -> None:
    """A malformed cron is a finding saying which field is wrong, not a failure at `schedules sync`."""
    readiness = check(_scheduled(Schedule(cron=cron, source="closed_bookings")), registries=REGISTRIES)

    assert [(FindingKind.MALFORMED_SCHEDULE, NAME, "schedule")] == found(readiness)
    assert said in readiness.findings[0].message


def test_a_schedule_needs_exactly_one_clock_and_a_source() -> None:
    """Two clocks (or none) and a missing source are each a finding of their own."""
    both = Schedule(cron="@hourly", every=timedelta(hours=1))

    readiness = check(_scheduled(both), registries=REGISTRIES)

    messages = [finding.message for finding in readiness.findings]
    assert [FindingKind.MALFORMED_SCHEDULE] * 2 == [finding.kind for finding in readiness.findings]
    assert "exactly one clock" in messages[0] and "name the function" in messages[1]


@pytest.mark.parametrize(
    "cron", ["* * * * *", "*/15 0-6,22 * * *", "0 0 1 jan,jul *", "30 6 ? * 1-5", "0 12 * * 7", "@weekly"]
)
def test_crons_temporal_reads_pass(cron: str) -> None:
    """Lists, ranges, steps, month and day names, and the @ shorthands are all readable."""
    assert cron_problem(cron) is None


def test_a_bare_cron_string_still_reads_and_hashes_as_it_was_written() -> None:
    """The contract language once took `schedule="0 6 * * *"`: it loads as a cron-only Schedule, and a contract
    written either way has the same content hash, so no lock breaks; a source or overlap changes the hash."""
    bare = _scheduled("0 6 * * *")
    typed = _scheduled(Schedule(cron="0 6 * * *"))
    with_source = _scheduled(Schedule(cron="0 6 * * *", source="closed_bookings"))

    assert bare.trigger is not None and Schedule(cron="0 6 * * *") == bare.trigger.schedule
    assert bare.content_hash() == typed.content_hash()
    assert typed.content_hash() != with_source.content_hash() != ready_contract().content_hash()
    assert "0 6 * * *" == bare.model_dump(mode="json")["trigger"]["schedule"]
