"""Realistic event payloads for the catalog's handoffs, good and bad, built fresh for each test."""

from __future__ import annotations

import uuid
from typing import Any


def reservation(**overrides: Any) -> dict[str, Any]:
    """A valid 'reservation.confirmed' payload; keyword overrides replace whole entities' fields by path."""
    payload: dict[str, Any] = {
        "reservation": {
            "id": f"R-{uuid.uuid4().hex[:8]}",
            "party_size": 4,
            "starts_at": "2026-12-04T19:30:00+00:00",
            "ends_at": "2026-12-04T21:30:00+00:00",
            "table_number": "T7",
            "channel": "web",
            "deposit_cents": 0,
            "notes": "anniversary",
        },
        "guest": {
            "name": "Ada Lovelace",
            "phone": "+44 20 7946 0000",
            "email": "ada@example.com",
            "allergies": "shellfish",
            "marketing_opt_in": True,
        },
    }
    return _apply(payload, overrides)


def deal(**overrides: Any) -> dict[str, Any]:
    """A valid 'deal.won' payload."""
    payload: dict[str, Any] = {
        "deal": {
            "id": f"D-{uuid.uuid4().hex[:8]}",
            "title": "Annual support plan",
            "amount_cents": 1_250_000,
            "currency": "EUR",
            "discount_pct": 10,
            "payment_terms_days": 30,
            "closed_on": "2026-11-20",
            "service_starts_on": "2026-12-01",
            "po_number": "PO-7781",
            "sales_owner": "maria",
            "probability_pct": 100,
        },
        "account": {
            "id": "ACC-1001",
            "legal_name": "Brasserie Lumière SARL",
            "billing_email": "compta@lumiere.example",
            "country": "FR",
            "vat_id": "FR12345678901",
            "industry": "hospitality",
        },
    }
    return _apply(payload, overrides)


def order(**overrides: Any) -> dict[str, Any]:
    """A valid 'order.placed' payload."""
    payload: dict[str, Any] = {
        "order": {
            "id": f"O-{uuid.uuid4().hex[:8]}",
            "placed_at": "2026-12-04T18:00:00+00:00",
            "fulfilment": "pickup",
            "ready_by": "2026-12-04T18:30:00+00:00",
            "delivery_address": None,
            "items": [
                {"sku": "PIZ-MARG", "name": "Pizza Margherita", "quantity": 2, "unit_price_cents": 1200},
                {"sku": "DES-TIRA", "name": "Tiramisu", "quantity": 1, "unit_price_cents": 700},
            ],
            "item_count": 3,
            "allergy_note": "no nuts",
            "total_cents": 3100,
            "tip_cents": 200,
            "currency": "EUR",
            "payment_intent_id": "pi_3Nabc",
            "paid_cents": 3100,
        },
        "customer": {"name": "Grace Hopper", "phone": "+1 555 0100", "email": "grace@example.com", "loyalty_id": "L-9"},
    }
    return _apply(payload, overrides)


def _apply(payload: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    # Overrides are written entity__field=value, e.g. reservation__party_size=14.
    for key, value in overrides.items():
        entity, field = key.split("__", 1)
        payload[entity][field] = value
    return payload
