"""The operator groups, declared once. Contracts name them as exception owners and escalation steps."""

from __future__ import annotations

from handoff import OperatorGroup

FRONT_OF_HOUSE = OperatorGroup(name="front-of-house", description="Hosts who run the floor and the reservation book.")
RESTAURANT_MANAGERS = OperatorGroup(name="restaurant-managers", description="Shift managers; take escalations.")
KITCHEN_LEADS = OperatorGroup(name="kitchen-leads", description="Head chefs who decide what the kitchen can make.")
SALES_OPS = OperatorGroup(name="sales-ops", description="Keeps the CRM's deals and accounts clean.")
FINANCE = OperatorGroup(name="finance", description="Owns invoicing and receivables.")

GROUPS = (FRONT_OF_HOUSE, RESTAURANT_MANAGERS, KITCHEN_LEADS, SALES_OPS, FINANCE)
