"""The clinic's `Handoffs`: its operator groups, scheduling as the source, billing as the target, the look-up and
the transform."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from handoff import HandoffContract, Handoffs, OperatorGroup, SystemAdapter
from tests.user_app.appointments import APPOINTMENT_TO_BILLING, CENTS_TO_AMOUNT, DENTIST_EXISTS

GROUPS = (
    OperatorGroup(name="front-desk", description="Receptionists who book and bill appointments."),
    OperatorGroup(name="practice-managers", description="Take over cases the front desk leaves open."),
)

DENTISTS = frozenset({"D-ANNA", "D-BEN"})
"""The clinic's staff as scheduling knows it."""


def dentist_exists(dentist_id: str | None) -> bool:
    """Whether scheduling knows the dentist (a plain function: the engine runs it in a thread)."""
    return dentist_id in DENTISTS


def cents_to_amount(cents: int | None) -> str | None:
    """12345 -> "123.45": billing keeps amounts as decimal strings, never as floats."""
    return None if cents is None else f"{Decimal(cents) / 100:.2f}"


def build_app(billing: SystemAdapter, *, contracts: Iterable[HandoffContract] = (APPOINTMENT_TO_BILLING,)) -> Handoffs:
    """The clinic's app, writing to billing through `billing`."""
    app = Handoffs(groups=GROUPS, contracts=contracts)
    app.source("scheduling")
    app.system("billing", billing)
    app.lookup(DENTIST_EXISTS)(dentist_exists)
    app.transform(CENTS_TO_AMOUNT)(cents_to_amount)
    return app
