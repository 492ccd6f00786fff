"""Personal marks at the gate: a personal path the payload lacks is an unknown field; marks never change the hash."""

from __future__ import annotations

from examples.restaurant import app as restaurant
from examples.restaurant.app import LOCK_FILE
from handoff.schemas.findings import FindingKind
from handoff.workers.lock import read_lock
from tests.workflows.sample_contracts import NAME, check, found, ready_contract


def test_personal_paths_the_payload_has_are_ready() -> None:
    """Fields, a nested field and a whole entity may be marked personal."""
    contract = ready_contract(personal=("guest.name", "guest.address.city", "booking"))

    assert [] == found(check(contract))


def test_a_personal_path_the_payload_lacks_is_an_unknown_field() -> None:
    """A misspelt mark would leave the real field unmasked: the gate names it, where, and the field meant."""
    readiness = check(ready_contract(personal=("guest.name", "guest.phon")))

    assert [(FindingKind.UNKNOWN_FIELD, NAME, "guest.phon")] == found(readiness)
    assert "the personal fields" in readiness.findings[0].message
    assert "Did you mean 'guest.phone'?" in readiness.findings[0].message


def test_personal_marks_leave_the_content_hash_as_it_was() -> None:
    """Marking fields personal changes no run: the hash (and so a lock) is the same with and without marks."""
    plain = ready_contract()

    assert plain.content_hash() == ready_contract(personal=("guest.name", "guest.phone")).content_hash()
    assert plain.content_hash() == ready_contract(personal=("guest",)).content_hash()


def test_the_examples_personal_marks_keep_its_lock_valid() -> None:
    """The restaurant marks guests' and customers' data personal, and every contract still matches its lock."""
    locked = read_lock(LOCK_FILE).hashes()

    assert all(contract.personal for contract in restaurant.catalog.contracts)
    current = {(c.name, c.version): c.content_hash() for c in restaurant.catalog.contracts}
    assert current == {key: locked.get(key) for key in current}
    assert restaurant.readiness().ready
