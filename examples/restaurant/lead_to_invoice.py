"""lead-to-invoice: a deal won in the CRM becomes a draft invoice in the invoicing system.

Without this handoff finance re-keys won deals from a weekly CRM export; VAT ids and terms are the usual errors.
"""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, Field

from examples.restaurant.groups import FINANCE, SALES_OPS
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


class Deal(BaseModel):
    id: str = Field(min_length=1, description="The CRM's deal id.")
    title: str | None = None
    amount_cents: int | None = None
    currency: str | None = None
    discount_pct: float = 0
    payment_terms_days: int | None = None
    closed_on: date | None = None
    service_starts_on: date | None = None
    po_number: str | None = None
    sales_owner: str | None = None
    probability_pct: int | None = None


class Account(BaseModel):
    id: str = Field(min_length=1)
    legal_name: str | None = None
    billing_email: str | None = None
    country: str | None = None
    vat_id: str | None = None
    industry: str | None = None


class DealWon(BaseModel):
    """The CRM's 'deal won' event."""

    deal: Deal
    account: Account


EU_COUNTRIES = ("AT", "BE", "DE", "ES", "FR", "IE", "IT", "NL", "PT")

CONTRACT = HandoffContract(
    name="lead-to-invoice",
    # v2: invoicing's fields are declared (its adapter `accepts`): every synced text fits its column, every amount its
    # integer, or the event waits for a decision.
    version=2,
    description="A won deal becomes a draft invoice for the right legal entity, amount and terms.",
    trigger=Trigger(event="deal.won", payload=DealWon, dedupe_key="deal.id"),
    source_of_truth={"deal": "crm", "account": "crm"},
    sync=Sync(
        targets=(
            SyncTarget(
                system="invoicing",
                fields=(
                    "deal.id",
                    "deal.title",
                    "deal.amount_cents",
                    "deal.currency",
                    "deal.discount_pct",
                    "deal.payment_terms_days",
                    "deal.po_number",
                    "account.legal_name",
                    "account.billing_email",
                    "account.country",
                    "account.vat_id",
                ),
                rename={"deal.id": "deal_ref"},
            ),
        ),
        local=("deal.sales_owner", "deal.probability_pct", "account.industry"),
    ),
    rules=(
        Required(field="deal.amount_cents", reason="An invoice needs an amount."),
        Min(field="deal.amount_cents", value=0, exclusive=True, reason="A won deal is worth more than nothing."),
        Max(field="deal.amount_cents", value=100_000_000, reason="Deals over 1,000,000 are invoiced by finance."),
        MaxLength(field="deal.title", value=255, reason="Invoicing keeps 255 characters of a title."),
        MaxLength(field="deal.po_number", value=64, reason="A purchase order number is at most 64 characters."),
        MaxLength(field="account.legal_name", value=255, reason="Invoicing keeps 255 characters of a legal name."),
        MaxLength(field="account.billing_email", value=254, reason="An e-mail address is at most 254 characters."),
        Pattern(field="account.country", regex=r"[A-Z]{2}", reason="A country is its ISO 3166 code, e.g. FR."),
        Required(field="deal.currency", reason="An invoice needs a currency."),
        OneOf(field="deal.currency", values=("EUR", "GBP", "USD"), reason="We invoice in EUR, GBP or USD."),
        Min(field="deal.discount_pct", value=0, reason="A discount is not negative."),
        Max(field="deal.discount_pct", value=30, reason="Discounts over 30% need a finance approval."),
        OneOf(field="deal.payment_terms_days", values=(14, 30, 60), reason="Standard terms are 14, 30 or 60 days."),
        Required(field="account.legal_name", reason="Invoices are addressed to the legal entity."),
        Required(field="account.billing_email", reason="The invoice is sent to the billing address."),
        Pattern(field="account.billing_email", regex=r"[^@\s]+@[^@\s]+\.[^@\s]+", reason="An e-mail address."),
        When(
            condition=OneOf(field="account.country", values=EU_COUNTRIES, reason="EU customer"),
            then=Required(field="account.vat_id", reason="VAT id"),
            reason="EU customers are invoiced with their VAT id (reverse charge).",
        ),
        Pattern(field="account.vat_id", regex=r"[A-Z]{2}[0-9A-Z]{8,12}", reason="A VAT id: country code, 8-12 chars."),
        Compare(
            left="deal.service_starts_on",
            op=">=",
            right="deal.closed_on",
            reason="Service cannot start before the deal was won.",
        ),
        Lookup(check="invoicing.account_not_blocked", field="account.id", reason="Blocked accounts are not invoiced."),
    ),
    exceptions=ExceptionPolicy(
        owner=SALES_OPS.name,
        # Finance never invoices bad data as it is: a case is corrected, retried or rejected, never approved.
        allowed=frozenset({DecisionKind.REJECT, DecisionKind.CORRECT, DecisionKind.RETRY}),
        sla=timedelta(hours=8),
        escalation=(FINANCE.name,),
        on_timeout=DecisionKind.REJECT,
    ),
    gain=Gain(
        metric="Share of won deals that need a manual fix before invoicing",
        unit="percent",
        measure=Measure.EXCEPTION_RATE,
        baseline=35,
        target=15,
    ),
    # A billing address is often a person's own mailbox; the rest of an account is a company's.
    personal=("account.billing_email",),
)
