"""`handoff lock`: every contract version recorded; a changed contract whose version did not move is refused, by the
lock, by `handoff check` and by the worker alike; a handoff that leaves the app with open runs is named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner, Result

from examples.restaurant import build_app, reservation_to_pos
from examples.restaurant.app import CONTRACTS, RestaurantApp
from handoff import AppNotReady, Max
from handoff.activities.ledger.database import create_schema, make_engine
from handoff.activities.ledger.tables import RunRow
from handoff.workers.cli import commands

app = commands("lock")

V1 = reservation_to_pos.CONTRACT  # the example's current version (whatever its number), then the next one
EDITED = V1.model_copy(  # the same version, a different rule: the mistake the lock is for
    update={
        "rules": tuple(
            Max(field=rule.field, value=14, reason=rule.reason)
            if isinstance(rule, Max) and rule.field == "reservation.party_size"
            else rule
            for rule in V1.rules
        )
    }
)
APPS: dict[str, RestaurantApp] = {}
"""The apps the commands below load, by attribute name (`--app tests.workers.test_cli_lock:APPS...`)."""


def __getattr__(name: str) -> RestaurantApp:
    try:
        return APPS[name]
    except KeyError:
        raise AttributeError(name) from None


def handoff(home: Path, *args: str) -> Result:
    env = {"HANDOFF_HOME": str(home), "HANDOFF_LOG_LEVEL": "WARNING", "COLUMNS": "300"}
    return CliRunner().invoke(app, list(args), env=env)


def _app(name: str, tmp_path: Path, *contracts: object) -> str:
    APPS[name] = build_app(
        f"sqlite:///{tmp_path / 'restaurant.db'}",
        contracts=contracts or CONTRACTS,  # type: ignore[arg-type]
        lock_file=tmp_path / "handoff.lock",
    )
    return f"{__name__}:{name}"


@pytest.fixture(autouse=True)
def _forget_apps() -> None:
    APPS.clear()


def test_lock_records_every_version_with_its_hash_and_keeps_it(tmp_path: Path) -> None:
    spec = _app("everything", tmp_path)

    first = handoff(tmp_path, "lock", "--app", spec)
    again = handoff(tmp_path, "lock", "--app", spec)

    locked = json.loads((tmp_path / "handoff.lock").read_text())["handoffs"]
    assert (0, 0) == (first.exit_code, again.exit_code), first.output
    assert {c.name: {str(c.version): c.content_hash()} for c in CONTRACTS} == {
        name: {version: entry["hash"] for version, entry in versions.items()} for name, versions in locked.items()
    }
    assert f"reservation-to-pos v{V1.version}  {V1.content_hash()}  locked now" in first.output
    assert "locked now" not in again.output


def test_a_contract_changed_without_a_new_version_is_refused_everywhere(tmp_path: Path) -> None:
    assert 0 == handoff(tmp_path, "lock", "--app", _app("before", tmp_path)).exit_code
    edited = _app("edited", tmp_path, EDITED, *(c for c in CONTRACTS if c.name != V1.name))

    locked = handoff(tmp_path, "lock", "--app", edited)
    checked = handoff(tmp_path, "check", "--app", edited)

    message = f"reservation-to-pos v{V1.version} changed since it was locked"
    assert (1, True) == (locked.exit_code, message in locked.output), locked.output
    assert "Nothing was locked." in locked.output
    assert (1, True) == (checked.exit_code, message in " ".join(checked.output.split())), checked.output
    assert f"bump the version to v{V1.version + 1}" in " ".join(checked.output.split()).lower()
    with pytest.raises(AppNotReady, match=message):
        APPS["edited"].raise_unless_ready()  # what the worker and `handoff up` run before they start


def test_the_next_version_is_locked_beside_the_first(tmp_path: Path) -> None:
    assert 0 == handoff(tmp_path, "lock", "--app", _app("v1", tmp_path)).exit_code
    v2 = EDITED.model_copy(update={"version": V1.version + 1})
    spec = _app("v2", tmp_path, v2, *(c for c in CONTRACTS if c.name != V1.name))

    checked = handoff(tmp_path, "check", "--app", spec)
    locked = handoff(tmp_path, "lock", "--app", spec)

    versions = json.loads((tmp_path / "handoff.lock").read_text())["handoffs"]["reservation-to-pos"]
    assert (0, 0) == (checked.exit_code, locked.exit_code), checked.output + locked.output
    assert {str(V1.version): V1.content_hash(), str(v2.version): v2.content_hash()} == {
        v: e["hash"] for v, e in versions.items()
    }
    assert [V1.version, v2.version] == sorted(c.version for c in APPS["v2"].every_version() if c.name == V1.name)


def test_a_handoff_that_leaves_the_app_with_open_runs_is_named(tmp_path: Path) -> None:
    assert 0 == handoff(tmp_path, "lock", "--app", _app("all", tmp_path)).exit_code
    ledger = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_schema(ledger)
    now = datetime.now(UTC)
    with Session(ledger) as session:
        for n, stage in enumerate(["awaiting-decision", "validating", "delivered"]):
            session.add(
                RunRow(
                    workflow_id=f"lead-to-invoice/D-{n}",
                    handoff="lead-to-invoice",
                    event="deal.won",
                    dedupe_key=f"D-{n}",
                    contract_version=1,
                    contract_hash="h",
                    stage=stage,
                    received_at=now,
                    updated_at=now,
                )
            )
        session.commit()
    ledger.dispose()
    without_invoices = _app("fewer", tmp_path, *(c for c in CONTRACTS if c.name != "lead-to-invoice"))

    result = handoff(tmp_path, "lock", "--app", without_invoices)

    said = " ".join(result.output.split())
    assert 0 == result.exit_code, result.output
    assert "lead-to-invoice is no longer in the app, but runs of it are still open (v1: 2 open)" in said
    assert "lead-to-invoice" in json.loads((tmp_path / "handoff.lock").read_text())["handoffs"]  # kept


def test_an_app_without_a_lock_file_is_told_how_to_get_one(tmp_path: Path) -> None:
    APPS["unlocked"] = build_app(f"sqlite:///{tmp_path / 'restaurant.db'}", lock_file=None)

    result = handoff(tmp_path, "lock", "--app", f"{__name__}:unlocked")

    assert 2 == result.exit_code
    assert "lock_file=Path(__file__).parent / 'handoff.lock'" in " ".join(result.output.split())
