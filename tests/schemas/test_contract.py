"""The contract's content hash: the same everywhere for the same contract, different for any change."""

from __future__ import annotations

import os
import subprocess
import sys

from pydantic import BaseModel, Field

from examples.restaurant import app as restaurant
from examples.restaurant import reservation_to_pos
from handoff.schemas import contract as language
from handoff.schemas.contract import ExceptionPolicy, HandoffContract, Trigger
from handoff.schemas.rules import Max

CATALOG = restaurant.catalog
HASHES = "from examples.restaurant import app; print(*[c.content_hash() for c in app.catalog.contracts])"


def test_the_content_hash_is_the_same_in_every_process() -> None:
    """Workers on other machines stamp the same hash: set order and hash seeds do not leak into it."""
    seen = {
        subprocess.run(
            [sys.executable, "-c", HASHES],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }

    assert {" ".join(c.content_hash() for c in CATALOG.contracts) + "\n"} == seen


def test_any_change_to_rules_policy_or_payload_changes_the_hash() -> None:
    """A rule's bound, the allowed decisions, or a payload field's constraint each give another hash."""
    contract = reservation_to_pos.CONTRACT
    tighter = contract.model_copy(
        update={"rules": (*contract.rules[:2], Max(field="reservation.party_size", value=10, reason="r"))}
    )
    assert contract.exceptions is not None
    stricter = contract.model_copy(
        update={"exceptions": ExceptionPolicy(**{**contract.exceptions.__dict__, "allowed": frozenset()})}
    )

    class Wider(BaseModel):
        reservation: reservation_to_pos.Reservation
        guest: reservation_to_pos.Guest
        source: str = Field(default="web", min_length=1)

    assert contract.trigger is not None
    reshaped = contract.model_copy(
        update={"trigger": Trigger(event=contract.trigger.event, payload=Wider, dedupe_key="reservation.id")}
    )

    hashes = {c.content_hash() for c in (contract, tighter, stricter, reshaped)}
    assert 4 == len(hashes)


def test_an_incomplete_contract_still_has_a_hash() -> None:
    """A contract the gate will refuse is still a value: it can be hashed, printed and compared."""
    assert 16 == len(HandoffContract(name="guesswork").content_hash())


def test_a_field_added_to_the_language_later_leaves_existing_hashes_alone() -> None:
    """A new contract field with a default (here a made-up `runbook`) does not change the hash of contracts that do
    not use it: their locks stay valid across a Handoff upgrade."""

    class LaterContract(HandoffContract):
        runbook: str | None = None

    today = reservation_to_pos.CONTRACT
    later = LaterContract(**{name: getattr(today, name) for name in HandoffContract.model_fields})

    assert today.content_hash() == later.content_hash()
    assert today.content_hash() != later.model_copy(update={"runbook": "https://wiki.example/pos"}).content_hash()


def test_a_hash_remembered_for_a_contract_is_never_given_to_its_copies() -> None:
    """The hash is remembered per contract object: a copy with another rule, made after the original was hashed,
    gets its own; an unchanged copy the same value; and only the last few hundred contracts are remembered."""
    original = reservation_to_pos.CONTRACT
    remembered = original.content_hash()
    changed = original.model_copy(update={"rules": original.rules[:1]})
    same = original.model_copy()

    assert remembered != changed.content_hash()
    assert remembered == same.content_hash() == original.content_hash()
    for version in range(1, 700):
        HandoffContract(name="many", version=version).content_hash()
    assert len(language._HASHED) <= language._HASHES_KEPT
