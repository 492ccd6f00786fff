"""The restaurant world: three handoffs between a booking tool, a POS, a kitchen, a CRM and invoicing.

A user package like any other: `handoff check --app examples.restaurant:app`, `handoff worker --app ...`.
Its systems are SQL tables in one database, `RESTAURANT_DATABASE_URL` (default: SQLite in `HANDOFF_HOME`).
"""

from __future__ import annotations

from examples.restaurant.app import RestaurantApp, app, build_app
from examples.restaurant.groups import GROUPS

__all__ = ["GROUPS", "RestaurantApp", "app", "build_app"]
