"""The demo's events: about fifty realistic events across the three catalog handoffs, some of them bad on purpose.

Deterministic (a seeded generator) so every demo run tells the same story. Each bad event is bad in a way a real
upstream system gets wrong, and `plan_decision` says what its owning operator does about it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from handoff import DecisionKind

GUESTS = ("Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra", "Barbara Liskov")
ACCOUNTS = (
    ("ACC-1001", "Brasserie Lumière SARL", "FR", "FR12345678901"),
    ("ACC-1002", "Osteria del Porto SRL", "IT", "IT12345678901"),
    ("ACC-1003", "The Copper Kettle Ltd", "GB", None),
    ("ACC-1004", "Café Central GmbH", "DE", "DE123456789"),
)
DISHES = (
    ("PIZ-MARG", "Pizza Margherita", 1200),
    ("PAS-CARB", "Spaghetti Carbonara", 1350),
    ("DES-TIRA", "Tiramisu", 700),
)


@dataclass(frozen=True)
class DemoEvent:
    """One event to send, and, when it is bad on purpose, what the operator will decide about its case."""

    event: str
    payload: dict[str, Any]
    flaw: str | None = None
    decision: DecisionKind | None = None
    patch: dict[str, Any] = field(default_factory=dict)


def demo_events(seed: int = 7) -> list[DemoEvent]:
    """48 events: 16 per handoff, a third of them bad in a realistic way."""
    rng = random.Random(seed)
    start = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
    events: list[DemoEvent] = []
    for n in range(16):
        events.append(_reservation(rng, n, start))
        events.append(_deal(rng, n))
        events.append(_order(rng, n, start))
    return events


def _reservation(rng: random.Random, n: int, start: datetime) -> DemoEvent:
    at = start + timedelta(minutes=15 * n)
    payload: dict[str, Any] = {
        "reservation": {
            "id": f"R-{1000 + n}",
            "party_size": rng.randint(2, 6),
            "starts_at": at.isoformat(),
            "ends_at": (at + timedelta(hours=2)).isoformat(),
            "table_number": f"T{rng.randint(1, 20)}",
            "channel": rng.choice(("web", "phone", "partner")),
            "deposit_cents": 0,
        },
        "guest": {"name": rng.choice(GUESTS), "phone": "+44 20 7946 0000", "allergies": rng.choice(("", "nuts"))},
    }
    if n % 4 == 1:
        payload["reservation"]["table_number"] = "T42"  # the booking tool still offers a table the POS removed
        return DemoEvent(
            "reservation.confirmed",
            payload,
            "table T42 does not exist in the POS",
            DecisionKind.CORRECT,
            {"reservation.table_number": "T4"},
        )
    if n % 8 == 3:
        payload["reservation"]["party_size"] = 14  # an event booking that came in through the web form
        return DemoEvent("reservation.confirmed", payload, "party of 14 without a deposit", DecisionKind.REJECT)
    return DemoEvent("reservation.confirmed", payload)


def _deal(rng: random.Random, n: int) -> DemoEvent:
    account_id, legal_name, country, vat_id = ACCOUNTS[n % 2 if n % 4 == 2 else n % len(ACCOUNTS)]
    payload: dict[str, Any] = {
        "deal": {
            "id": f"D-{2000 + n}",
            "title": rng.choice(("Annual support plan", "POS rollout", "Menu analytics")),
            "amount_cents": rng.randint(50, 400) * 10_000,
            "currency": "EUR" if country != "GB" else "GBP",
            "discount_pct": rng.choice((0, 5, 10)),
            "payment_terms_days": rng.choice((14, 30)),
            "closed_on": "2026-11-20",
            "service_starts_on": "2026-12-01",
        },
        "account": {
            "id": account_id,
            "legal_name": legal_name,
            "billing_email": f"billing@{account_id.lower()}.example",
            "country": country,
            "vat_id": vat_id,
        },
    }
    if n % 4 == 2:
        payload["account"]["vat_id"] = None  # sales closed the deal before the VAT id was collected
        return DemoEvent(
            "deal.won",
            payload,
            "EU customer without a VAT id",
            DecisionKind.CORRECT,
            {"account.vat_id": vat_id or "FR99999999999"},
        )
    if n % 8 == 5:
        payload["account"]["id"] = "ACC-BLOCKED-1"  # an account finance blocked for unpaid invoices
        return DemoEvent("deal.won", payload, "account blocked in invoicing", DecisionKind.REJECT)
    return DemoEvent("deal.won", payload)


def _order(rng: random.Random, n: int, start: datetime) -> DemoEvent:
    placed = start + timedelta(minutes=5 * n)
    chosen = [(sku, name, price, rng.randint(1, 2)) for sku, name, price in rng.sample(DISHES, 2)]
    lines = [{"sku": sku, "name": name, "quantity": qty, "unit_price_cents": price} for sku, name, price, qty in chosen]
    total = sum(price * qty for _, _, price, qty in chosen)
    payload: dict[str, Any] = {
        "order": {
            "id": f"O-{3000 + n}",
            "placed_at": placed.isoformat(),
            "fulfilment": "pickup",
            "ready_by": (placed + timedelta(minutes=30)).isoformat(),
            "items": lines,
            "item_count": sum(qty for *_, qty in chosen),
            "total_cents": total,
            "payment_intent_id": f"pi_{n:04d}",
            "paid_cents": total,
        },
        "customer": {"name": rng.choice(GUESTS), "email": "guest@example.com"},
    }
    if n % 4 == 0:
        payload["order"]["fulfilment"] = "delivery"  # the app lost the address on the way
        return DemoEvent("order.placed", payload, "delivery without an address", DecisionKind.APPROVE)
    if n % 8 == 3:
        payload["order"]["paid_cents"] = total - 500  # a voucher the ordering platform did not pass on
        return DemoEvent(
            "order.placed",
            payload,
            "paid amount differs from the total",
            DecisionKind.CORRECT,
            {"order.total_cents": total - 500},
        )
    return DemoEvent("order.placed", payload)
