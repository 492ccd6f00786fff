"""The catalog of business handoffs: one module per handoff, each declaring its payload and its contract.

To add a handoff, write a module beside these with a payload model and a `CONTRACT`, list it below, and run
`handoff check` until it says READY.
"""

from __future__ import annotations

from handoff.schemas.contract import Catalog
from handoff.workflows.catalog import lead_to_invoice, order_to_kitchen, reservation_to_pos
from handoff.workflows.catalog.groups import GROUPS

CATALOG = Catalog(
    groups=GROUPS,
    contracts=(reservation_to_pos.CONTRACT, lead_to_invoice.CONTRACT, order_to_kitchen.CONTRACT),
)
