"""A small payload and a READY contract that tests break one answer at a time.

Every readiness test starts from `ready_contract()`, which the gate passes, and changes one thing, so the findings
it asserts are exactly the ones that change caused.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from handoff.schemas.contract import (
    Catalog,
    DecisionKind,
    ExceptionPolicy,
    Gain,
    HandoffContract,
    Measure,
    OperatorGroup,
    Sync,
    SyncTarget,
    Trigger,
)
from handoff.schemas.findings import CatalogReadiness, ContractReadiness, FindingKind
from handoff.schemas.rules import Required
from handoff.workflows.readiness import check_catalog


class Line(BaseModel):
    dish: str
    quantity: int = 1


class Address(BaseModel):
    street: str | None = None
    city: str | None = None


class Booking(BaseModel):
    id: str = Field(min_length=1)
    ref: str | None = None
    party_size: int | None = None
    deposit: float | None = None
    table: str | None = None
    channel: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    seated_at: datetime | None = None
    opened_on: date | None = None
    vip: bool = False
    lines: list[Line] = Field(default_factory=list)


class Guest(BaseModel):
    name: str | None = None
    phone: str | None = None
    address: Address | None = None


class BookingConfirmed(BaseModel):
    booking: Booking
    guest: Guest
    note: str | None = None


GROUPS = (OperatorGroup(name="hosts"), OperatorGroup(name="managers"))
NAME = "table-booking"


def ready_contract(**changes: Any) -> HandoffContract:
    """A contract that answers every question; `changes` replace its parts."""
    parts: dict[str, Any] = {
        "name": NAME,
        "trigger": Trigger(event="booking.confirmed", payload=BookingConfirmed, dedupe_key="booking.id"),
        "source_of_truth": {"booking": "bookings", "guest": "bookings"},
        "sync": Sync(
            targets=(
                SyncTarget(
                    system="pos",
                    fields=("booking.id", "booking.party_size", "guest.name"),
                    rename={"booking.id": "booking_ref"},
                ),
            ),
            local=("guest.phone",),
        ),
        "rules": (Required(field="booking.party_size", reason="The POS sizes the table from the party."),),
        "exceptions": ExceptionPolicy(owner="hosts", escalation=("managers",), on_timeout=DecisionKind.REJECT),
        "gain": Gain(metric="Time to a table", unit="seconds", measure=Measure.CYCLE_TIME, baseline=600, target=60),
    }
    parts.update(changes)
    return HandoffContract(**parts)


def check(*contracts: HandoffContract, **options: Any) -> CatalogReadiness:
    """The gate's verdict on a catalog of these contracts and the two sample groups."""
    return check_catalog(Catalog(groups=GROUPS, contracts=contracts), **options)


def found(readiness: CatalogReadiness | ContractReadiness) -> list[tuple[FindingKind, str, str]]:
    """The findings as (kind, contract, subject), the part tests assert exactly."""
    return [(finding.kind, finding.contract, finding.subject) for finding in readiness.findings]
