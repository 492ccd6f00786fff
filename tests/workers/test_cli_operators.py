"""`handoff operators add|list`: roles, declared groups only, unique names, a token shown once and stored as a hash."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import Result
from sqlmodel import Session, select
from typer.testing import CliRunner

from examples.restaurant import app as restaurant
from handoff.activities.ledger.database import make_engine
from handoff.activities.ledger.operators import operator_for_token, token_hash
from handoff.activities.ledger.tables import OperatorRow
from handoff.schemas.operators import Role
from handoff.workers.cli import commands
from tests.workers.cli_runner import restored_logging

app = commands("operators")


def operators(tmp_path: Path, *args: str) -> Result:
    env = {
        "HANDOFF_HOME": str(tmp_path),
        "HANDOFF_APP": "examples.restaurant:app",
        "HANDOFF_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",
    }
    with restored_logging():
        return CliRunner().invoke(app, ["operators", *args], env=env)


def stored(tmp_path: Path) -> list[OperatorRow]:
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with Session(engine) as session:
            return list(session.exec(select(OperatorRow)).all())
    finally:
        engine.dispose()


def test_add_prints_the_token_once_and_the_ledger_keeps_only_its_hash(tmp_path: Path) -> None:
    """The printed token resolves to the operator; the ledger row holds its SHA-256, never the token."""
    added = operators(tmp_path, "add", "hana", "--group", "front-of-house", "--group", "restaurant-managers")

    assert 0 == added.exit_code, added.output
    assert "hana added as an operator of front-of-house, restaurant-managers." in added.stdout
    token = added.stdout.strip().splitlines()[-1]
    [row] = stored(tmp_path)
    assert ("hana", ["front-of-house", "restaurant-managers"], token_hash(token)) == (
        row.name,
        row.groups,
        row.token_hash,
    )
    assert token not in json.dumps(row.model_dump(mode="json"))
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    operator = operator_for_token(engine, token)
    engine.dispose()
    assert operator is not None and "hana" == operator.name


def test_list_shows_operators_roles_and_groups_but_no_token(tmp_path: Path) -> None:
    """`list` (table and --json) names each operator, their role and groups; the token appears nowhere."""
    added = operators(tmp_path, "add", "sam", "-g", "sales-ops", "--json")
    token = json.loads(added.stdout)["token"]
    operators(tmp_path, "add", "vera", "--role", "viewer")

    table = operators(tmp_path, "list")
    listed = operators(tmp_path, "list", "--json")

    assert (0, 0) == (table.exit_code, listed.exit_code)
    assert [("sam", "operator", ["sales-ops"]), ("vera", "viewer", [])] == [
        (o["name"], o["role"], o["groups"]) for o in json.loads(listed.stdout)
    ]
    cells = [[cell.strip() for cell in line.split("│")[1:4]] for line in table.stdout.splitlines() if "│" in line]
    assert [["sam", "operator", "sales-ops"], ["vera", "viewer", "-"]] == cells
    assert token not in table.stdout + listed.stdout


def test_each_role_is_added_with_its_groups_and_an_operator_needs_one(tmp_path: Path) -> None:
    """An administrator, a viewer and a source need no group (an operator is the default role and needs one); the
    role is stored and comes back with the token."""
    administrator = operators(tmp_path, "add", "ada", "--role", "administrator")
    viewer = operators(tmp_path, "add", "vera", "--role", "viewer", "--group", "finance", "--json")
    source = operators(tmp_path, "add", "till", "--role", "source", "--json")
    groupless = operators(tmp_path, "add", "otto")
    unknown_role = operators(tmp_path, "add", "root", "--role", "superuser")

    assert (0, 0, 0, 2, 2) == tuple(r.exit_code for r in (administrator, viewer, source, groupless, unknown_role)), (
        administrator.output
    )
    assert "ada added as an administrator." in administrator.stdout
    viewer_added = json.loads(viewer.stdout)["operator"]
    assert ("viewer", ["finance"]) == (viewer_added["role"], viewer_added["groups"])
    assert "needs at least one group" in groupless.stderr and "superuser" in unknown_role.output
    assert [("ada", "administrator", []), ("till", "source", []), ("vera", "viewer", ["finance"])] == [
        (row.name, row.role, row.groups) for row in sorted(stored(tmp_path), key=lambda row: row.name)
    ]
    engine = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    found = operator_for_token(engine, json.loads(source.stdout)["token"])
    engine.dispose()
    assert found is not None and (Role.SOURCE, ()) == (found.role, found.groups)


def test_an_undeclared_group_is_refused_naming_the_declared_ones(tmp_path: Path) -> None:
    """A typo in a group adds nothing; the message lists the groups the catalog declares."""
    refused = operators(tmp_path, "add", "hana", "--group", "front-of-hose")

    assert 2 == refused.exit_code
    assert "front-of-hose" in refused.stderr
    assert all(group in refused.stderr for group in restaurant.catalog.group_names)
    assert [] == stored(tmp_path)


def test_a_duplicate_name_is_refused_and_the_first_token_still_works(tmp_path: Path) -> None:
    """Adding a name twice fails; the existing operator and their token are untouched."""
    first = operators(tmp_path, "add", "hana", "--group", "front-of-house", "--json")
    again = operators(tmp_path, "add", "hana", "--group", "finance")

    assert (0, 2) == (first.exit_code, again.exit_code)
    assert "exists already" in again.stderr
    [row] = stored(tmp_path)
    assert (["front-of-house"], token_hash(json.loads(first.stdout)["token"])) == (row.groups, row.token_hash)
