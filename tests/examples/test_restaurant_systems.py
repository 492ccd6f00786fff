"""The restaurant's systems: idempotent writes, typed read-back, the look-up checks and the seed, on real SQLite."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlmodel import SQLModel

from examples.restaurant import build_app, reservation_to_pos
from examples.restaurant.app import CONTRACTS
from examples.restaurant.lead_to_invoice import Account, Deal, DealWon
from examples.restaurant.order_to_kitchen import Customer, Order, OrderLine, OrderPlaced
from examples.restaurant.reservation_to_pos import Guest, Reservation, ReservationConfirmed
from examples.restaurant.systems import (
    BLOCKED_ACCOUNTS,
    FLOOR_TABLES,
    MENU,
    SOURCE_ROWS,
    SYSTEM_TABLES,
    RestaurantSystems,
    TableAdapter,
)
from examples.restaurant.systems.tables import METADATA
from handoff import InvalidFieldValue, Lookup, MaxLength, SyncTarget, TargetField, UnknownField, WriteOutcome

CATALOG = build_app("sqlite://").catalog

RESERVATION = ReservationConfirmed(
    reservation=Reservation(
        id="R-7001",
        party_size=6,
        starts_at=datetime.fromisoformat("2026-12-24T20:00:00+01:00"),
        ends_at=datetime.fromisoformat("2026-12-24T22:30:00+01:00"),
        table_number="T12",
        channel="phone",
        notes="Window seat if possible",
    ),
    guest=Guest(name="Grace Hopper", phone="+1 555 0100", allergies="shellfish, sesame"),
)
DEAL = DealWon(
    deal=Deal(
        id="D-8001",
        title="Staff canteen 2027",
        amount_cents=4_800_000,
        currency="EUR",
        discount_pct=7.5,
        payment_terms_days=30,
        closed_on=date(2026, 11, 20),
        service_starts_on=date(2027, 1, 4),
        po_number="PO-55120",
        sales_owner="linus",
    ),
    account=Account(
        id="ACC-4711",
        legal_name="Difference Engines BV",
        billing_email="ap@difference-engines.example",
        country="NL",
        vat_id="NL123456789B01",
    ),
)
ORDER = OrderPlaced(
    order=Order(
        id="O-9001",
        placed_at=datetime(2026, 11, 27, 18, 5, tzinfo=UTC),
        fulfilment="delivery",
        ready_by=datetime(2026, 11, 27, 18, 45, tzinfo=UTC),
        delivery_address="1 Loop Street",
        items=[
            OrderLine(sku="PIZ-DIAV", name="Pizza Diavola", quantity=1, unit_price_cents=1450),
            OrderLine(sku="SAL-CAES", name="Caesar Salad", quantity=2, unit_price_cents=950),
        ],
        item_count=3,
        allergy_note="no nuts",
        total_cents=3350,
        payment_intent_id="pi_9001",
        paid_cents=3350,
    ),
    customer=Customer(name="Edsger Dijkstra", phone="+31 20 000 0000"),
)

# What each target system holds after delivery: typed, datetimes in UTC. Keyed by system, the payload it comes from.
DELIVERED: dict[str, tuple[BaseModel, dict[str, Any]]] = {
    "pos": (
        RESERVATION,
        {
            "booking_ref": "R-7001",
            "reservation_party_size": 6,
            "reservation_starts_at": datetime(2026, 12, 24, 19, 0, tzinfo=UTC),
            "reservation_table_number": "T12",
            "guest_name": "Grace Hopper",
            "guest_allergies": "shellfish, sesame",
        },
    ),
    "invoicing": (
        DEAL,
        {
            "deal_ref": "D-8001",
            "deal_title": "Staff canteen 2027",
            "deal_amount_cents": 4_800_000,
            "deal_currency": "EUR",
            "deal_discount_pct": 7.5,
            "deal_payment_terms_days": 30,
            "deal_po_number": "PO-55120",
            "account_legal_name": "Difference Engines BV",
            "account_billing_email": "ap@difference-engines.example",
            "account_country": "NL",
            "account_vat_id": "NL123456789B01",
        },
    ),
    "kitchen": (
        ORDER,
        {
            "order_ref": "O-9001",
            "order_items": [
                {"sku": "PIZ-DIAV", "name": "Pizza Diavola", "quantity": 1, "unit_price_cents": 1450},
                {"sku": "SAL-CAES", "name": "Caesar Salad", "quantity": 2, "unit_price_cents": 950},
            ],
            "order_allergy_note": "no nuts",
            "order_fulfilment": "delivery",
            "order_ready_by": datetime(2026, 11, 27, 18, 45, tzinfo=UTC),
            "for_name": "Edsger Dijkstra",
        },
    ),
    "payments": (
        ORDER,
        {"order_ref": "O-9001", "order_payment_intent_id": "pi_9001", "capture_cents": 3350, "order_currency": "EUR"},
    ),
}

SYNC_TARGETS = [target for contract in CATALOG.contracts if contract.sync for target in contract.sync.targets]


def _sync_fields(payload: BaseModel, target: SyncTarget) -> dict[str, Any]:
    """The fields delivery sends: the payload as JSON (what crosses Temporal), picked and renamed by the target."""
    data = payload.model_dump(mode="json")
    fields = {}
    for path in target.fields:
        entity, field = path.split(".")
        fields[target.target_name(path)] = data[entity][field]
    return fields


def _without_written_at(row: dict[str, Any] | None) -> dict[str, Any]:
    assert row is not None
    written_at = row.pop("written_at")
    assert isinstance(written_at, datetime)
    assert written_at.utcoffset() is not None
    return row


@pytest.fixture
def systems(tmp_path: Path) -> Iterator[RestaurantSystems]:
    demo = RestaurantSystems(f"sqlite:///{tmp_path / 'systems.db'}")
    demo.prepare()
    yield demo
    demo.dispose()


@pytest.mark.parametrize("target", SYNC_TARGETS, ids=lambda target: target.system)
def test_catalog_target_round_trips(systems: RestaurantSystems, target: SyncTarget) -> None:
    """A catalog sync target's fields, sent as JSON, are written once and read back typed."""
    payload, delivered = DELIVERED[target.system]
    adapter = systems.adapter(target.system)

    outcome = adapter.write("handoff/run-1", _sync_fields(payload, target))

    expected = WriteOutcome.WRITTEN
    assert expected == outcome
    assert {"record_key": "handoff/run-1", **delivered} == _without_written_at(adapter.read("handoff/run-1"))


def test_every_catalog_target_is_covered() -> None:
    """Every system the catalog syncs to is a demo system with a round-trip case above."""
    assert sorted(DELIVERED) == sorted(target.system for target in SYNC_TARGETS)
    assert {target.system for target in SYNC_TARGETS} <= frozenset(SYSTEM_TABLES)


@pytest.mark.parametrize(
    ("system", "payload", "typed_field", "typed_value"),
    [
        ("booking", RESERVATION, "reservation_ends_at", datetime(2026, 12, 24, 21, 30, tzinfo=UTC)),
        ("crm", DEAL, "deal_service_starts_on", date(2027, 1, 4)),
        ("ordering", ORDER, "order_placed_at", datetime(2026, 11, 27, 18, 5, tzinfo=UTC)),
    ],
)
def test_source_system_round_trips(
    systems: RestaurantSystems, system: str, payload: BaseModel, typed_field: str, typed_value: Any
) -> None:
    """A source system stores its flattened payload and reads it back typed, leaving out empty columns."""
    fields = {
        f"{entity}_{field}": value
        for entity, values in payload.model_dump(mode="json").items()
        for field, value in values.items()
    }
    adapter = systems.adapter(system)

    outcome = adapter.write("src-1", fields)
    row = _without_written_at(adapter.read("src-1"))

    expected_columns = {"record_key", *(name for name, value in fields.items() if value is not None)}
    assert (WriteOutcome.WRITTEN, expected_columns, typed_value) == (outcome, set(row), row[typed_field])


def test_second_write_is_already_written(systems: RestaurantSystems) -> None:
    """Writing the same key twice keeps one row, with the first write's values."""
    pos = systems.adapter("pos")
    first = {"booking_ref": "R-1", "reservation_party_size": 2, "guest_name": "Ada"}

    outcomes = [pos.write("reservation-to-pos/R-1", first), pos.write("reservation-to-pos/R-1", {"guest_name": "B"})]

    expected = [WriteOutcome.WRITTEN, WriteOutcome.ALREADY_WRITTEN]
    assert expected == outcomes
    assert [{"record_key": "reservation-to-pos/R-1", **first}] == [_without_written_at(r) for r in systems.rows("pos")]


def test_write_is_idempotent_across_restarts(tmp_path: Path) -> None:
    """The same write from a new process on the same database finds the first one."""
    url = f"sqlite:///{tmp_path / 'systems.db'}"
    outcomes = []
    for _ in range(2):
        with RestaurantSystems(url) as systems:
            outcomes.append(systems.adapter("payments").write("order-to-kitchen/O-1", {"capture_cents": 1200}))
            rows = systems.rows("payments")

    expected = ([WriteOutcome.WRITTEN, WriteOutcome.ALREADY_WRITTEN], 1)
    assert expected == (outcomes, len(rows))


def test_concurrent_writes_end_with_one_row(systems: RestaurantSystems) -> None:
    """Threads writing the same key at once produce exactly one row and one WRITTEN."""
    kitchen = systems.adapter("kitchen")
    start = threading.Barrier(8)

    def deliver(_: int) -> WriteOutcome:
        start.wait()
        return kitchen.write("order-to-kitchen/O-42", {"order_ref": "O-42", "for_name": "Alan"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(deliver, range(8)))

    expected = ({WriteOutcome.WRITTEN: 1, WriteOutcome.ALREADY_WRITTEN: 7}, 1)
    assert expected == (Counter(outcomes), len(systems.rows("kitchen")))


def test_unique_key_decides_a_lost_race(systems: RestaurantSystems, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that checked before another committed hits the unique key and reports ALREADY_WRITTEN."""
    pos = systems.adapter("pos")
    pos.write("run-1", {"booking_ref": "R-1"})
    # Replays the lost race deterministically: the first existence check answers as if it ran before the
    # other writer committed; the insert and the unique key are real.
    real_exists = TableAdapter._exists
    answers = iter([False])
    monkeypatch.setattr(TableAdapter, "_exists", lambda self, key: next(answers, None) or real_exists(self, key))

    expected = (WriteOutcome.ALREADY_WRITTEN, 1)
    assert expected == (pos.write("run-1", {"booking_ref": "R-1"}), len(systems.rows("pos")))


def test_unknown_field_is_refused_by_name(systems: RestaurantSystems) -> None:
    """A field the system has no column for raises UnknownField naming the system and field; nothing is written."""
    with pytest.raises(UnknownField) as raised:
        systems.adapter("payments").write("run-1", {"order_ref": "O-1", "tip_cents": 200})

    expected = ("payments", ("tip_cents",), [])
    assert expected == (raised.value.system, raised.value.fields, systems.rows("payments"))
    assert "the payments system has no field 'tip_cents'" in str(raised.value)


def test_unstorable_value_is_refused_by_name(systems: RestaurantSystems) -> None:
    """A value of the wrong kind raises InvalidFieldValue naming the field; nothing is written."""
    with pytest.raises(InvalidFieldValue) as raised:
        systems.adapter("pos").write("run-1", {"reservation_starts_at": "tomorrow evening"})

    expected = ("pos", "reservation_starts_at", [])
    assert expected == (raised.value.system, raised.value.field, systems.rows("pos"))


def test_read_of_an_unwritten_key_is_none(systems: RestaurantSystems) -> None:
    """Reading a key nobody wrote returns None."""
    assert None is systems.adapter("invoicing").read("lead-to-invoice/nothing")


def test_unknown_system_lists_the_known_ones() -> None:
    """Asking the app for an unknown system raises a KeyError that lists every system it registers."""
    with pytest.raises(KeyError) as raised:
        build_app("sqlite://").adapter("erp")

    assert "'erp'" in str(raised.value)
    assert all(name in str(raised.value) for name in SYSTEM_TABLES)


async def test_unknown_check_lists_the_known_ones() -> None:
    """Asking the app for an unknown look-up raises a KeyError that lists every look-up it registers."""
    app = build_app("sqlite://")
    with pytest.raises(KeyError) as raised:
        await app.look_up("pos.table_is_clean", "T1")

    assert "'pos.table_is_clean'" in str(raised.value)
    assert all(name in str(raised.value) for name in app.registries.lookups)


def test_every_catalog_lookup_runs(systems: RestaurantSystems) -> None:
    """Every look-up the catalog's rules name is answered by the demo systems (a missing value passes)."""
    lookups = sorted({rule.check for c in CATALOG.contracts for rule in c.rules if isinstance(rule, Lookup)})

    assert {check: True for check in lookups} == {check: systems.look_up(check)(None) for check in lookups}


MENU_LINE = {"sku": MENU[0].sku, "name": MENU[0].name, "quantity": 1, "unit_price_cents": MENU[0].price_cents}


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        ("pos.table_exists", "T1", True),
        ("pos.table_exists", FLOOR_TABLES[-1], True),
        ("pos.table_exists", "T21", False),
        ("pos.table_exists", "t1", False),
        ("pos.table_exists", 1, False),
        ("pos.table_exists", None, True),
        ("invoicing.account_not_blocked", "ACC-4711", True),
        ("invoicing.account_not_blocked", next(iter(BLOCKED_ACCOUNTS)), False),
        ("invoicing.account_not_blocked", None, True),
        ("kitchen.items_on_menu", [MENU_LINE, {**MENU_LINE, "sku": MENU[-1].sku}], True),
        ("kitchen.items_on_menu", [MENU_LINE, {**MENU_LINE, "sku": "PIZ-HAWAII"}], False),
        ("kitchen.items_on_menu", [{"name": "no sku"}], False),
        ("kitchen.items_on_menu", [], True),
        ("kitchen.items_on_menu", None, True),
    ],
)
def test_look_up(systems: RestaurantSystems, check: str, value: Any, expected: bool) -> None:
    """Each look-up holds for seeded values, fails for others, and passes a missing value."""
    assert expected == systems.look_up(check)(value)


def test_seed_is_idempotent(tmp_path: Path) -> None:
    """Preparing the systems again, from a second instance on the same database, leaves the same rows."""
    url = f"sqlite:///{tmp_path / 'systems.db'}"
    with RestaurantSystems(url) as systems:
        systems.prepare()
        first = {system: systems.rows(system) for system in SYSTEM_TABLES}
    with RestaurantSystems(url) as again:
        again.prepare()
        after = {system: again.rows(system) for system in SYSTEM_TABLES}
        tables_seeded = [again.look_up("pos.table_exists")(table) for table in FLOOR_TABLES]

    assert first == after
    assert {system: len(rows) for system, rows in SOURCE_ROWS.items()} == {
        system: len(rows) for system, rows in after.items() if rows
    }
    assert all(tables_seeded)


def test_in_memory_database_is_shared_across_threads() -> None:
    """An in-memory URL works: every thread sees the one database."""
    with RestaurantSystems("sqlite://") as systems:
        systems.prepare()
        with ThreadPoolExecutor(max_workers=2) as pool:
            holds = pool.submit(systems.look_up("pos.table_exists"), "T3").result()

    assert True is holds


def test_tables_stay_off_the_ledger_metadata() -> None:
    """The systems' tables are not on SQLModel.metadata, so the ledger's create_all never makes them."""
    assert set() == set(METADATA.tables) & set(SQLModel.metadata.tables)


def test_a_whole_number_beyond_what_the_column_holds_is_refused_by_name(systems: RestaurantSystems) -> None:
    """PostgreSQL's INTEGER holds 32 bits: a larger amount is refused in words, the same on SQLite."""
    with pytest.raises(InvalidFieldValue) as raised:
        systems.adapter("invoicing").write("run-1", {"deal_amount_cents": 2**40})

    assert ("deal_amount_cents", []) == (raised.value.field, systems.rows("invoicing"))
    assert "from -2147483648 to 2147483647" in str(raised.value)


def test_every_target_declares_what_it_accepts_and_the_contracts_fit_it(tmp_path: Path) -> None:
    """The systems' columns are declared to the gate; without the rule that bounds a guest's name, the POS's 255
    characters would be a finding."""
    app = build_app("sqlite://")
    accepts = app.registries.accepts
    unbounded = reservation_to_pos.CONTRACT.model_copy(
        update={"rules": tuple(rule for rule in reservation_to_pos.CONTRACT.rules if not isinstance(rule, MaxLength))}
    )
    others = (c for c in CONTRACTS if c.name != unbounded.name)
    loose = build_app("sqlite://", contracts=[unbounded, *others], lock_file=tmp_path / "handoff.lock")

    assert app.registries.targets == set(accepts)
    assert TargetField.text(max_length=255) == accepts["pos"]["guest_name"]
    assert TargetField.integer(-(2**31), 2**31 - 1) == accepts["invoicing"]["deal_amount_cents"]
    assert app.readiness().ready
    assert ["guest.name / pos.guest_name"] == [finding.subject for finding in loose.readiness().findings]
