"""A user's handoffs, written outside the engine: a dental clinic whose bookings become invoice lines in billing.

This package stands for a user's own code. It reaches Handoff only through the public face (`from handoff import
...`), and otherwise imports pydantic and httpx, as a user's package would; `tests/test_user_app_over_http.py`
checks that, then runs the app against a real billing service over HTTP.

    async with BillingAdapter("https://billing.example") as billing:
        app = build_app(billing)
"""

from __future__ import annotations

from tests.user_app.appointments import APPOINTMENT_TO_BILLING, Appointment, AppointmentBooked, Patient
from tests.user_app.billing import BillingAdapter
from tests.user_app.clinic import DENTISTS, GROUPS, build_app, cents_to_amount, dentist_exists

__all__ = [
    "APPOINTMENT_TO_BILLING",
    "DENTISTS",
    "GROUPS",
    "Appointment",
    "AppointmentBooked",
    "BillingAdapter",
    "Patient",
    "build_app",
    "cents_to_amount",
    "dentist_exists",
]
