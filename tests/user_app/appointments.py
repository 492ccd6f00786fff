"""appointment-to-billing: a booked appointment becomes an invoice line in the clinic's billing service.

Without this handoff the front desk re-types every booking into billing at the end of the day, and treatments
booked with a dentist who has left the clinic are billed under nobody.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from handoff import (
    DecisionKind,
    ExceptionPolicy,
    Gain,
    HandoffContract,
    Lookup,
    Max,
    Measure,
    Min,
    Required,
    Sync,
    SyncTarget,
    Trigger,
)

DENTIST_EXISTS = "scheduling.dentist_exists"
"""The look-up that asks scheduling whether a dentist is on the clinic's staff."""

CENTS_TO_AMOUNT = "billing.cents_to_amount"
"""The transform that writes a fee in cents as billing's decimal amount ("123.45")."""


class Appointment(BaseModel):
    id: str = Field(min_length=1, description="Scheduling's appointment id.")
    dentist_id: str | None = None
    starts_at: datetime | None = None
    treatment: str | None = None
    fee_cents: int | None = None


class Patient(BaseModel):
    name: str | None = None
    phone: str | None = None
    insurance_number: str | None = None


class AppointmentBooked(BaseModel):
    """Scheduling's 'appointment booked' event."""

    appointment: Appointment
    patient: Patient


APPOINTMENT_TO_BILLING = HandoffContract(
    name="appointment-to-billing",
    description="A booked appointment becomes an invoice line in billing, with the fee as billing's amount.",
    trigger=Trigger(event="appointment.booked", payload=AppointmentBooked, dedupe_key="appointment.id"),
    source_of_truth={"appointment": "scheduling", "patient": "scheduling"},
    sync=Sync(
        targets=(
            SyncTarget(
                system="billing",
                fields=(
                    "appointment.id",
                    "appointment.treatment",
                    "appointment.fee_cents",
                    "patient.name",
                    "patient.insurance_number",
                ),
                rename={
                    "appointment.id": "appointment_ref",
                    "appointment.treatment": "treatment",
                    "appointment.fee_cents": "amount",
                    "patient.name": "patient",
                    "patient.insurance_number": "insurance_number",
                },
                transforms={"appointment.fee_cents": CENTS_TO_AMOUNT},
            ),
        ),
        local=("appointment.dentist_id", "appointment.starts_at", "patient.phone"),
    ),
    rules=(
        Required(field="appointment.treatment", reason="Billing prices the line by its treatment."),
        Required(field="appointment.fee_cents", reason="An invoice line needs an amount."),
        Min(field="appointment.fee_cents", value=0, reason="A fee is never negative."),
        Max(
            field="appointment.fee_cents",
            value=250_000,
            reason="Treatments over 2,500.00 need a cost estimate signed by the patient first.",
        ),
        Required(field="patient.name", reason="The invoice is addressed to the patient."),
        Required(field="appointment.dentist_id", reason="Every treatment is billed under a dentist."),
        Lookup(
            check=DENTIST_EXISTS,
            field="appointment.dentist_id",
            reason="The dentist must be on the clinic's staff in scheduling.",
        ),
    ),
    exceptions=ExceptionPolicy(
        owner="front-desk",
        allowed=frozenset({DecisionKind.APPROVE, DecisionKind.CORRECT, DecisionKind.REJECT}),
        sla=timedelta(hours=2),
        escalation=("practice-managers",),
        on_timeout=DecisionKind.REJECT,
    ),
    gain=Gain(
        metric="Seconds from booking to an invoice line",
        unit="seconds",
        measure=Measure.CYCLE_TIME,
        baseline=8 * 3600,
        target=60,
    ),
)
