"""The demo business systems' tables, written out by hand: a real system's API has a fixed shape of its own.

Target systems (pos, kitchen, payments, invoicing) have one column per name the catalog's `SyncTarget`s write
under; source systems (booking, crm, ordering) hold their events' payloads flattened as `entity_field`. Every table
is keyed by `record_key` (the writer's idempotency key) and stamps `written_at`.

These tables live on their own `METADATA`, not on `SQLModel.metadata`: the ledger creates everything registered
there in another database, and must not create the business systems' tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Date, DateTime, Dialect, Float, Integer, MetaData, String, Table, Text
from sqlalchemy.types import TypeDecorator

METADATA = MetaData()
"""The demo systems' own metadata; `DemoSystems` creates exactly these tables."""

KEY_COLUMNS = ("record_key", "written_at")
"""Columns every system table has, set by the adapter rather than by the written fields."""


class UtcDateTime(TypeDecorator[datetime]):
    """A moment in time, stored in UTC and read back timezone-aware on every backend.

    SQLite drops the offset of a datetime it stores; normalising to UTC first keeps the moment right. A naive
    datetime is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is None:
            return value
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json() -> JSON:
    # A missing list is SQL NULL (so `read` leaves it out), not the JSON text 'null'.
    return JSON(none_as_null=True)


def _system_table(name: str, *columns: Column[Any]) -> Table:
    return Table(
        name,
        METADATA,
        Column("record_key", String(255), primary_key=True),
        Column("written_at", UtcDateTime(), nullable=False),
        *columns,
    )


# Source systems: where the events come from. Their rows are the payloads, flattened.

BOOKING = _system_table(
    "booking_reservations",
    Column("reservation_id", String(255)),
    Column("reservation_party_size", Integer),
    Column("reservation_starts_at", UtcDateTime()),
    Column("reservation_ends_at", UtcDateTime()),
    Column("reservation_table_number", String(255)),
    Column("reservation_channel", String(255)),
    Column("reservation_deposit_cents", Integer),
    Column("reservation_notes", Text),
    Column("guest_name", String(255)),
    Column("guest_phone", String(255)),
    Column("guest_email", String(255)),
    Column("guest_allergies", Text),
    Column("guest_marketing_opt_in", Boolean),
)

CRM = _system_table(
    "crm_deals",
    Column("deal_id", String(255)),
    Column("deal_title", String(255)),
    Column("deal_amount_cents", Integer),
    Column("deal_currency", String(255)),
    Column("deal_discount_pct", Float),
    Column("deal_payment_terms_days", Integer),
    Column("deal_closed_on", Date),
    Column("deal_service_starts_on", Date),
    Column("deal_po_number", String(255)),
    Column("deal_sales_owner", String(255)),
    Column("deal_probability_pct", Integer),
    Column("account_id", String(255)),
    Column("account_legal_name", String(255)),
    Column("account_billing_email", String(255)),
    Column("account_country", String(255)),
    Column("account_vat_id", String(255)),
    Column("account_industry", String(255)),
)

ORDERING = _system_table(
    "ordering_orders",
    Column("order_id", String(255)),
    Column("order_placed_at", UtcDateTime()),
    Column("order_fulfilment", String(255)),
    Column("order_ready_by", UtcDateTime()),
    Column("order_delivery_address", Text),
    Column("order_items", _json()),
    Column("order_item_count", Integer),
    Column("order_allergy_note", Text),
    Column("order_total_cents", Integer),
    Column("order_tip_cents", Integer),
    Column("order_currency", String(255)),
    Column("order_payment_intent_id", String(255)),
    Column("order_paid_cents", Integer),
    Column("customer_name", String(255)),
    Column("customer_phone", String(255)),
    Column("customer_email", String(255)),
    Column("customer_loyalty_id", String(255)),
)

# Target systems: what the handoffs deliver. Column names are `SyncTarget.target_name` of each synced field.

POS = _system_table(
    "pos_open_tables",
    Column("booking_ref", String(255)),
    Column("reservation_party_size", Integer),
    Column("reservation_starts_at", UtcDateTime()),
    Column("reservation_table_number", String(255)),
    Column("guest_name", String(255)),
    Column("guest_allergies", Text),
)

KITCHEN = _system_table(
    "kitchen_tickets",
    Column("order_ref", String(255)),
    Column("order_items", _json()),
    Column("order_allergy_note", Text),
    Column("order_fulfilment", String(255)),
    Column("order_ready_by", UtcDateTime()),
    Column("for_name", String(255)),
)

PAYMENTS = _system_table(
    "payments_captures",
    Column("order_ref", String(255)),
    Column("order_payment_intent_id", String(255)),
    Column("capture_cents", Integer),
    Column("order_currency", String(255)),
)

INVOICING = _system_table(
    "invoicing_draft_invoices",
    Column("deal_ref", String(255)),
    Column("deal_title", String(255)),
    Column("deal_amount_cents", Integer),
    Column("deal_currency", String(255)),
    Column("deal_discount_pct", Float),
    Column("deal_payment_terms_days", Integer),
    Column("deal_po_number", String(255)),
    Column("account_legal_name", String(255)),
    Column("account_billing_email", String(255)),
    Column("account_country", String(255)),
    Column("account_vat_id", String(255)),
)

SYSTEM_TABLES: dict[str, Table] = {
    "booking": BOOKING,
    "crm": CRM,
    "ordering": ORDERING,
    "pos": POS,
    "kitchen": KITCHEN,
    "payments": PAYMENTS,
    "invoicing": INVOICING,
}
"""System name -> the table its adapter writes."""

# Reference data the validation look-ups read; `seed` fills it.

POS_FLOOR_TABLES = Table(
    "pos_floor_tables",
    METADATA,
    Column("table_number", String(255), primary_key=True),
    Column("seats", Integer, nullable=False),
)

KITCHEN_MENU = Table(
    "kitchen_menu",
    METADATA,
    Column("sku", String(255), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("price_cents", Integer, nullable=False),
)

INVOICING_BLOCKED_ACCOUNTS = Table(
    "invoicing_blocked_accounts",
    METADATA,
    Column("account_id", String(255), primary_key=True),
    Column("reason", Text, nullable=False),
)
