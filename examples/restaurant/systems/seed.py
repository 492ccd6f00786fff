"""The demo's starting data: the POS floor plan, the kitchen's menu, invoicing's blocked accounts, a few source rows.

The constants are public so the demo and tests can build events that pass (or fail) the look-ups on purpose.
Seeding adds what is missing and never changes what is there, so it is safe on every start of every process.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import structlog
from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.exc import IntegrityError

from examples.restaurant.systems.tables import INVOICING_BLOCKED_ACCOUNTS, KITCHEN_MENU, POS_FLOOR_TABLES
from handoff import SystemAdapter

log = structlog.get_logger(__name__)


class MenuItem(NamedTuple):
    sku: str
    name: str
    price_cents: int


FLOOR_TABLES: tuple[str, ...] = tuple(f"T{number}" for number in range(1, 21))
"""The POS's tables, T1..T20: what `pos.table_exists` accepts."""

MENU: tuple[MenuItem, ...] = (
    MenuItem("PIZ-MARG", "Pizza Margherita", 1200),
    MenuItem("PIZ-DIAV", "Pizza Diavola", 1450),
    MenuItem("PAS-CARB", "Spaghetti Carbonara", 1350),
    MenuItem("SAL-CAES", "Caesar Salad", 950),
    MenuItem("DES-TIRA", "Tiramisu", 700),
    MenuItem("DRK-LEMO", "Homemade Lemonade", 450),
)
"""Today's menu: what `kitchen.items_on_menu` accepts."""

BLOCKED_ACCOUNTS: Mapping[str, str] = {
    "ACC-BLOCKED-1": "Three invoices unpaid for over 90 days.",
    "ACC-BLOCKED-2": "Insolvency proceedings opened.",
}
"""Account id -> why invoicing refuses it: what `invoicing.account_not_blocked` rejects."""

SOURCE_ROWS: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]] = {
    "booking": (
        (
            "R-1001",
            {
                "reservation_id": "R-1001",
                "reservation_party_size": 4,
                "reservation_starts_at": "2026-11-27T19:30:00+00:00",
                "reservation_ends_at": "2026-11-27T21:30:00+00:00",
                "reservation_table_number": "T4",
                "reservation_channel": "web",
                "reservation_deposit_cents": 0,
                "guest_name": "Ada Lovelace",
                "guest_email": "ada@example.com",
                "guest_allergies": "peanuts",
                "guest_marketing_opt_in": False,
            },
        ),
    ),
    "crm": (
        (
            "D-2001",
            {
                "deal_id": "D-2001",
                "deal_title": "Catering contract 2027",
                "deal_amount_cents": 1_250_000,
                "deal_currency": "EUR",
                "deal_discount_pct": 5.0,
                "deal_payment_terms_days": 30,
                "deal_closed_on": "2026-11-20",
                "deal_service_starts_on": "2027-01-01",
                "deal_sales_owner": "grace",
                "deal_probability_pct": 100,
                "account_id": "ACC-1001",
                "account_legal_name": "Analytical Engines GmbH",
                "account_billing_email": "billing@analytical-engines.example",
                "account_country": "DE",
                "account_vat_id": "DE123456789",
                "account_industry": "manufacturing",
            },
        ),
    ),
    "ordering": (
        (
            "O-3001",
            {
                "order_id": "O-3001",
                "order_placed_at": "2026-11-27T18:00:00+00:00",
                "order_fulfilment": "pickup",
                "order_ready_by": "2026-11-27T18:30:00+00:00",
                "order_items": [
                    {"sku": "PIZ-MARG", "name": "Pizza Margherita", "quantity": 2, "unit_price_cents": 1200},
                    {"sku": "DES-TIRA", "name": "Tiramisu", "quantity": 1, "unit_price_cents": 700},
                ],
                "order_item_count": 3,
                "order_total_cents": 3100,
                "order_tip_cents": 0,
                "order_currency": "EUR",
                "order_payment_intent_id": "pi_3001",
                "order_paid_cents": 3100,
                "customer_name": "Alan Turing",
                "customer_phone": "+44 20 7946 0000",
            },
        ),
    ),
}
"""System -> (record key, fields) of the rows the source systems start with."""


def seed(engine: Engine, adapters: Mapping[str, SystemAdapter]) -> None:
    """Add whatever of the demo data is missing; leave every existing row as it is."""
    _insert_missing(
        engine, POS_FLOOR_TABLES, [{"table_number": t, "seats": _seats(n)} for n, t in enumerate(FLOOR_TABLES, 1)]
    )
    _insert_missing(engine, KITCHEN_MENU, [item._asdict() for item in MENU])
    _insert_missing(
        engine,
        INVOICING_BLOCKED_ACCOUNTS,
        [{"account_id": account, "reason": reason} for account, reason in BLOCKED_ACCOUNTS.items()],
    )
    for system, rows in SOURCE_ROWS.items():
        for record_key, fields in rows:
            adapters[system].write(record_key, fields)


def _seats(number: int) -> int:
    return 2 if number <= 8 else 4 if number <= 16 else 8


def _insert_missing(engine: Engine, table: Table, rows: list[dict[str, Any]]) -> None:
    key = next(iter(table.primary_key.columns))
    for attempt in (1, 2):
        with engine.connect() as connection:
            present = set(connection.scalars(select(key)))
        missing = [row for row in rows if row[key.name] not in present]
        if not missing:
            return
        try:
            with engine.begin() as connection:
                connection.execute(insert(table), missing)
        except IntegrityError:
            # Another process seeded the same rows between our read and our insert: read again, once.
            if attempt == 2:
                raise
            continue
        log.info("systems.seeded", table=table.name, rows=len(missing))
        return
