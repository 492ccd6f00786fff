"""The restaurant's systems (booking, POS, kitchen, CRM, invoicing, payments, ordering) as SQL tables."""

from __future__ import annotations

from examples.restaurant.systems.checks import CHECKS
from examples.restaurant.systems.demo import RestaurantSystems, TableAdapter, create_systems_engine
from examples.restaurant.systems.seed import BLOCKED_ACCOUNTS, FLOOR_TABLES, MENU, SOURCE_ROWS, MenuItem
from examples.restaurant.systems.tables import SYSTEM_TABLES

__all__ = [
    "BLOCKED_ACCOUNTS",
    "CHECKS",
    "FLOOR_TABLES",
    "MENU",
    "SOURCE_ROWS",
    "SYSTEM_TABLES",
    "MenuItem",
    "RestaurantSystems",
    "TableAdapter",
    "create_systems_engine",
]
