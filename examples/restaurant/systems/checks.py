"""The validation look-ups a contract's `Lookup` rules name, answered from the demo systems' reference data.

A look-up only judges a value that is there: a missing value passes, because presence is a `Required` rule's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, select

from examples.restaurant.systems.tables import INVOICING_BLOCKED_ACCOUNTS, KITCHEN_MENU, POS_FLOOR_TABLES

Check = Callable[[Connection, Any], bool]
"""A look-up: the value of the rule's field in, whether it holds out."""


def pos_table_exists(connection: Connection, value: Any) -> bool:
    """The value names a table on the POS floor plan."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    found = connection.execute(
        select(POS_FLOOR_TABLES.c.table_number).where(POS_FLOOR_TABLES.c.table_number == value)
    ).first()
    return found is not None


def invoicing_account_not_blocked(connection: Connection, value: Any) -> bool:
    """The account id is not on invoicing's blocked list."""
    if value is None:
        return True
    blocked = connection.execute(
        select(INVOICING_BLOCKED_ACCOUNTS.c.account_id).where(INVOICING_BLOCKED_ACCOUNTS.c.account_id == str(value))
    ).first()
    return blocked is None


def kitchen_items_on_menu(connection: Connection, value: Any) -> bool:
    """Every order line's `sku` is on the kitchen's menu. Lines are dicts (JSON) or objects with a `sku`."""
    if value is None:
        return True
    if not isinstance(value, list | tuple):
        return False
    skus = [_sku(line) for line in value]
    if any(sku is None for sku in skus):
        return False
    wanted = set(skus)
    if not wanted:
        return True
    on_menu = set(connection.scalars(select(KITCHEN_MENU.c.sku).where(KITCHEN_MENU.c.sku.in_(wanted))))
    return wanted <= on_menu


def _sku(line: Any) -> str | None:
    sku = line.get("sku") if isinstance(line, Mapping) else getattr(line, "sku", None)
    return sku if isinstance(sku, str) else None


CHECKS: dict[str, Check] = {
    "pos.table_exists": pos_table_exists,
    "invoicing.account_not_blocked": invoicing_account_not_blocked,
    "kitchen.items_on_menu": kitchen_items_on_menu,
}
"""Check name, as `Lookup.check` spells it -> the look-up."""
