"""reservation-to-pos: a confirmed booking becomes an open table in the restaurant's POS.

Without this handoff a host re-types each reservation into the POS before service; allergies get lost on the way.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from examples.restaurant.groups import FRONT_OF_HOUSE, RESTAURANT_MANAGERS
from handoff import (
    Compare,
    DecisionKind,
    ExceptionPolicy,
    Gain,
    HandoffContract,
    Lookup,
    Max,
    MaxLength,
    Measure,
    Min,
    OneOf,
    Pattern,
    Required,
    Sync,
    SyncTarget,
    Trigger,
    When,
)


class Reservation(BaseModel):
    id: str = Field(min_length=1, description="The booking system's reservation id.")
    party_size: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    table_number: str | None = None
    channel: str | None = None
    deposit_cents: int = 0
    notes: str | None = None


class Guest(BaseModel):
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    allergies: str | None = None
    marketing_opt_in: bool = False


class ReservationConfirmed(BaseModel):
    """The booking system's 'reservation confirmed' event."""

    reservation: Reservation
    guest: Guest


CONTRACT = HandoffContract(
    name="reservation-to-pos",
    # v2: the POS's columns are declared (its adapter `accepts`), so a name longer than its 255 characters waits for a
    # decision here instead of being refused at delivery.
    version=2,
    description="A confirmed booking opens a table in the POS with the party size, time and allergies.",
    trigger=Trigger(event="reservation.confirmed", payload=ReservationConfirmed, dedupe_key="reservation.id"),
    source_of_truth={"reservation": "booking", "guest": "booking"},
    sync=Sync(
        targets=(
            SyncTarget(
                system="pos",
                fields=(
                    "reservation.id",
                    "reservation.party_size",
                    "reservation.starts_at",
                    "reservation.table_number",
                    "guest.name",
                    "guest.allergies",
                ),
                rename={"reservation.id": "booking_ref", "guest.name": "guest_name"},
            ),
        ),
        local=("guest.phone", "guest.email", "guest.marketing_opt_in", "reservation.notes", "reservation.channel"),
    ),
    rules=(
        Required(field="reservation.party_size", reason="The POS sizes the table and the covers from the party."),
        Min(field="reservation.party_size", value=1, reason="A party has at least one guest."),
        Max(field="reservation.party_size", value=12, reason="Parties over 12 are events, booked by a manager."),
        Required(field="reservation.starts_at", reason="Without a time the table cannot be held."),
        Required(field="guest.name", reason="The host greets the party by name."),
        MaxLength(field="guest.name", value=255, reason="The POS shows at most 255 characters of a name."),
        Compare(
            left="reservation.ends_at",
            op=">",
            right="reservation.starts_at",
            reason="A reservation must end after it starts.",
        ),
        Pattern(field="reservation.table_number", regex=r"T\d{1,3}", reason="POS tables are named T1, T2, ..."),
        Lookup(check="pos.table_exists", field="reservation.table_number", reason="The table must exist in the POS."),
        OneOf(field="reservation.channel", values=("web", "phone", "walk-in", "partner"), reason="Known channels."),
        When(
            condition=Min(field="reservation.party_size", value=8, reason="large party"),
            then=Min(field="reservation.deposit_cents", value=1, reason="deposit"),
            reason="Parties of 8 or more pay a deposit before the table is held.",
        ),
    ),
    exceptions=ExceptionPolicy(
        owner=FRONT_OF_HOUSE.name,
        allowed=frozenset(DecisionKind),
        sla=timedelta(minutes=30),
        escalation=(RESTAURANT_MANAGERS.name,),
        on_timeout=DecisionKind.REJECT,
    ),
    gain=Gain(
        metric="Minutes from confirmation to a table in the POS",
        unit="seconds",
        measure=Measure.CYCLE_TIME,
        baseline=1800,
        target=60,
    ),
    # Who the guest is and what they cannot eat (health data): shown only to the group deciding the case.
    personal=("guest.name", "guest.phone", "guest.email", "guest.allergies"),
)
