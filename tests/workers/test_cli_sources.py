"""`handoff sources add|rotate|list`: a secret shown once per add or rotation, two active at most, events checked."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from handoff.activities.ledger.database import make_engine
from handoff.activities.ledger.sources import signing_source
from handoff.workers.cli import commands
from tests.workers.cli_runner import restored_logging

app = commands("sources")


def sources(tmp_path: Path, *args: str) -> Result:
    env = {
        "HANDOFF_HOME": str(tmp_path),
        "HANDOFF_APP": "examples.restaurant:app",
        "HANDOFF_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",
    }
    with restored_logging():
        return CliRunner().invoke(app, ["sources", *args], env=env)


def active_secrets(tmp_path: Path, name: str) -> tuple[str, ...]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        found = signing_source(engine, name)
    finally:
        engine.dispose()
    assert found is not None
    return found.secrets


def test_add_prints_the_secret_once_and_list_never_does(tmp_path: Path) -> None:
    """`add` prints the source's events and its secret; `list` (table and --json) shows the events, not the secret."""
    added = sources(tmp_path, "add", "till", "--event", "reservation.confirmed", "--event", "order.placed")

    assert 0 == added.exit_code, added.output
    assert "till added, sending reservation.confirmed, order.placed." in added.stdout
    secret = added.stdout.strip().splitlines()[-1]
    assert (secret,) == active_secrets(tmp_path, "till")
    table = sources(tmp_path, "list")
    listed = sources(tmp_path, "list", "--json")
    assert [("till", ["reservation.confirmed", "order.placed"], 1)] == [
        (s["name"], s["events"], s["active_secrets"]) for s in json.loads(listed.stdout)
    ]
    assert "till" in table.stdout and secret not in table.stdout + listed.stdout


def test_rotate_keeps_the_previous_secret_and_drops_the_older(tmp_path: Path) -> None:
    """Each rotation prints a new secret; the one before it stays active, and the oldest goes at the second."""
    first = json.loads(sources(tmp_path, "add", "till", "-e", "reservation.confirmed", "--json").stdout)["secret"]
    once = sources(tmp_path, "rotate", "till")
    second = once.stdout.strip().splitlines()[-1]
    after_one = active_secrets(tmp_path, "till")
    third = json.loads(sources(tmp_path, "rotate", "till", "--json").stdout)["secret"]

    assert 0 == once.exit_code, once.output
    assert "the previous one stays valid" in once.stdout
    assert (second, first) == after_one
    assert (third, second) == active_secrets(tmp_path, "till")
    listed = json.loads(sources(tmp_path, "list", "--json").stdout)
    assert [2] == [s["active_secrets"] for s in listed] and listed[0]["rotated_at"] is not None


def test_bad_adds_and_rotations_are_refused_saying_why(tmp_path: Path) -> None:
    """An unknown event, no event, a duplicate name and rotating an unknown source exit 2 and change nothing."""
    unknown_event = sources(tmp_path, "add", "till", "--event", "reservation.cancelled")
    no_event = sources(tmp_path, "add", "till")
    first = sources(tmp_path, "add", "till", "--event", "reservation.confirmed")
    duplicate = sources(tmp_path, "add", "till", "--event", "deal.won")
    unknown_source = sources(tmp_path, "rotate", "oven")

    assert (2, 2, 0, 2, 2) == tuple(r.exit_code for r in (unknown_event, no_event, first, duplicate, unknown_source))
    assert "reservation.cancelled" in unknown_event.stderr and "known events: " in unknown_event.stderr
    assert "at least one event" in no_event.stderr
    assert "exists already" in duplicate.stderr
    assert "No source named 'oven' (known sources: till)" in unknown_source.stderr
    assert 1 == len(active_secrets(tmp_path, "till"))
