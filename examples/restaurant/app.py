"""The restaurant's `Handoffs`: its groups, contracts, systems with their adapters, and look-ups."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from examples.restaurant import lead_to_invoice, order_to_kitchen, reservation_to_pos
from examples.restaurant.groups import GROUPS
from examples.restaurant.systems import CHECKS, SYSTEM_TABLES, RestaurantSystems
from handoff import HandoffContract, Handoffs

DATABASE_VARIABLE = "RESTAURANT_DATABASE_URL"
LOCK_FILE = Path(__file__).parent / "handoff.lock"
"""Every contract version the restaurant has shipped (`handoff lock --app examples.restaurant:app`)."""
CONTRACTS = (reservation_to_pos.CONTRACT, lead_to_invoice.CONTRACT, order_to_kitchen.CONTRACT)


class RestaurantApp(Handoffs):
    """The app, with its systems at hand for the demo and tests to see what arrived."""

    def __init__(
        self,
        systems: RestaurantSystems,
        *,
        contracts: Iterable[HandoffContract] = CONTRACTS,
        lock_file: Path | None = LOCK_FILE,
    ) -> None:
        super().__init__(groups=GROUPS, contracts=contracts, lock_file=lock_file)
        self.systems = systems
        # Every system is a table here, so each gets an adapter, sources of truth included (the demo seeds them).
        for system in SYSTEM_TABLES:
            self.system(system, systems.adapter(system))
        for name in CHECKS:
            self.lookup(name)(systems.look_up(name))


def build_app(
    database_url: str | None = None,
    *,
    contracts: Iterable[HandoffContract] = CONTRACTS,
    lock_file: Path | None = LOCK_FILE,
) -> RestaurantApp:
    """The restaurant app on the systems database at `database_url` (default: `RESTAURANT_DATABASE_URL`, else
    SQLite in `HANDOFF_HOME`); tests may give other contract versions and another lock file."""
    home = Path(os.environ.get("HANDOFF_HOME", ".handoff"))
    url = database_url or os.environ.get(DATABASE_VARIABLE) or f"sqlite:///{home / 'restaurant.db'}"
    return RestaurantApp(RestaurantSystems(url), contracts=contracts, lock_file=lock_file)


app = build_app()
