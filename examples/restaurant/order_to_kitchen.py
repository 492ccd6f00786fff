"""order-to-kitchen: an online order becomes a kitchen ticket, and its payment is captured.

Without this handoff staff read orders off a tablet, call out allergies, and capture payments by hand at close.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from examples.restaurant.groups import KITCHEN_LEADS, RESTAURANT_MANAGERS
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
    Required,
    Sync,
    SyncTarget,
    Trigger,
    When,
)


class OrderLine(BaseModel):
    sku: str
    name: str
    quantity: int = Field(ge=1)
    unit_price_cents: int = Field(ge=0)


class Order(BaseModel):
    id: str = Field(min_length=1, description="The ordering platform's order id.")
    placed_at: datetime | None = None
    fulfilment: str | None = None
    ready_by: datetime | None = None
    delivery_address: str | None = None
    items: list[OrderLine] = Field(default_factory=list)
    item_count: int | None = None
    allergy_note: str | None = None
    total_cents: int | None = None
    tip_cents: int = 0
    currency: str = "EUR"
    payment_intent_id: str | None = None
    paid_cents: int | None = None


class Customer(BaseModel):
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    loyalty_id: str | None = None


class OrderPlaced(BaseModel):
    """The ordering platform's 'order placed' event."""

    order: Order
    customer: Customer


CONTRACT = HandoffContract(
    name="order-to-kitchen",
    # v2: the kitchen's and payments' fields are declared (their adapters `accepts`): names, currencies and amounts
    # that would not fit wait for a decision instead of being refused at delivery.
    version=2,
    description="An online order reaches the kitchen as a ticket, and its authorised payment is captured.",
    trigger=Trigger(event="order.placed", payload=OrderPlaced, dedupe_key="order.id"),
    source_of_truth={"order": "ordering", "customer": "ordering"},
    sync=Sync(
        targets=(
            SyncTarget(
                system="kitchen",
                fields=(
                    "order.id",
                    "order.items",
                    "order.allergy_note",
                    "order.fulfilment",
                    "order.ready_by",
                    "customer.name",
                ),
                rename={"order.id": "order_ref", "customer.name": "for_name"},
            ),
            SyncTarget(
                system="payments",
                fields=("order.id", "order.payment_intent_id", "order.total_cents", "order.currency"),
                rename={"order.id": "order_ref", "order.total_cents": "capture_cents"},
            ),
        ),
        local=(
            "customer.phone",
            "customer.email",
            "customer.loyalty_id",
            "order.delivery_address",
            "order.tip_cents",
            "order.placed_at",
            "order.paid_cents",
            "order.item_count",
        ),
    ),
    rules=(
        Required(field="order.items", reason="A ticket needs at least one dish."),
        Min(field="order.item_count", value=1, reason="An order has at least one item."),
        Max(field="order.item_count", value=40, reason="Orders over 40 items are catering, quoted by a manager."),
        Required(field="order.fulfilment", reason="The kitchen packs pickup and delivery differently."),
        OneOf(field="order.fulfilment", values=("pickup", "delivery"), reason="Pickup or delivery."),
        When(
            condition=OneOf(field="order.fulfilment", values=("delivery",), reason="delivery"),
            then=Required(field="order.delivery_address", reason="address"),
            reason="A delivery needs an address.",
        ),
        Required(field="order.ready_by", reason="The kitchen schedules tickets by ready time."),
        Compare(left="order.ready_by", op=">", right="order.placed_at", reason="Food is ready after it is ordered."),
        Required(field="order.payment_intent_id", reason="Only authorised payments are captured."),
        MaxLength(field="order.payment_intent_id", value=255, reason="A payment intent id is at most 255 characters."),
        Min(field="order.total_cents", value=0, reason="An order total is not negative."),
        Max(field="order.total_cents", value=10_000_000, reason="Orders over 100,000 are catering, quoted by hand."),
        OneOf(field="order.currency", values=("EUR", "GBP", "USD"), reason="Payments capture EUR, GBP or USD."),
        MaxLength(field="customer.name", value=255, reason="The kitchen's ticket shows 255 characters of a name."),
        Compare(
            left="order.paid_cents",
            op="==",
            right="order.total_cents",
            reason="The authorised amount must match the order total.",
        ),
        Lookup(check="kitchen.items_on_menu", field="order.items", reason="Every dish must be on today's menu."),
    ),
    exceptions=ExceptionPolicy(
        owner=KITCHEN_LEADS.name,
        allowed=frozenset({DecisionKind.APPROVE, DecisionKind.REJECT, DecisionKind.CORRECT, DecisionKind.RETRY}),
        sla=timedelta(minutes=10),
        escalation=(RESTAURANT_MANAGERS.name,),
        on_timeout=DecisionKind.REJECT,
    ),
    gain=Gain(
        metric="Operator touches per online order",
        unit="touches per run",
        measure=Measure.MANUAL_TOUCHES,
        baseline=2,
        target=0.2,
    ),
    # Who ordered, where they live, and what they cannot eat (health data).
    personal=(
        "customer.name",
        "customer.phone",
        "customer.email",
        "customer.loyalty_id",
        "order.delivery_address",
        "order.allergy_note",
    ),
)
