"""The business systems Handoff delivers to and validates against, each behind one small adapter interface.

`SystemAdapter` is the interface; `DemoSystems` runs the demo's systems (booking, POS, kitchen, CRM, invoicing,
payments, ordering) as SQL tables and answers the contracts' look-up checks from their reference data. To reach a
real system, write a class with `system`, `write` and `read` that calls its API, keeping `write` idempotent by key.
"""

from __future__ import annotations

from handoff.activities.systems.adapter import InvalidFieldValue, SystemAdapter, UnknownField, WriteOutcome
from handoff.activities.systems.demo import DemoSystems, TableAdapter, create_systems_engine
from handoff.activities.systems.seed import BLOCKED_ACCOUNTS, FLOOR_TABLES, MENU, SOURCE_ROWS, MenuItem

__all__ = [
    "BLOCKED_ACCOUNTS",
    "FLOOR_TABLES",
    "MENU",
    "SOURCE_ROWS",
    "DemoSystems",
    "InvalidFieldValue",
    "MenuItem",
    "SystemAdapter",
    "TableAdapter",
    "UnknownField",
    "WriteOutcome",
    "create_systems_engine",
]
