"""The ledger's migrations on SQLite and PostgreSQL: the schema they build equals the models, an old ledger with
rows upgrades without losing any, upgrading is idempotent and safe from racing processes, and `handoff migrate`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel
from typer.testing import CliRunner, Result

from handoff.activities.ledger.database import create_schema, make_engine, newest_revision
from handoff.activities.ledger.migrate import MigrationError, alembic_config, current, head, upgrade
from handoff.activities.ledger.operators import add_operator, list_operators, operator_for_token
from handoff.activities.ledger.sources import add_source, remember_signatures, rotate_secret, signing_source
from handoff.activities.ledger.tables import LEDGER_TABLES as MODEL_TABLES
from handoff.activities.ledger.writes import record_refusal, record_stage_change
from handoff.schemas.activities import RefusalRecord, RunStamp, StageChange
from handoff.schemas.cases import DecisionRequest, ExceptionCase, RefusedDecision, Violation
from handoff.schemas.contract import DecisionKind
from handoff.schemas.operators import Role
from handoff.schemas.runs import Stage
from handoff.workers.cli import commands
from tests.workers.cli_runner import restored_logging

cli_app = commands("migrate")

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
LEDGER_TABLES = {
    "runs",
    "cases",
    "violations",
    "decisions",
    "escalations",
    "refused_decisions",
    "deliveries",
    "operators",
    "sources",
    "source_secrets",
    "seen_signatures",
    "case_events",
    "notices",
    "holds",
    "notice_outbox",
}
CASE_HISTORY_TABLES = {"case_events", "notices"}
"""The tables 0006 adds."""
LATER_TABLES = {"holds", "notice_outbox"}
"""The tables 0007 (the exception budget's holds) and 0009 (the notice outbox) add."""
SOURCE_TABLES = {"sources", "source_secrets", "seen_signatures"}
"""The tables 0004 adds."""


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    """An engine on the empty database; disposed after the test."""
    engine = make_engine(ledger_url)
    try:
        yield engine
    finally:
        engine.dispose()


def differences(engine: Engine) -> list[Any]:
    """What Alembic's autogenerate would change to make the database equal the models (types and defaults too)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(context, SQLModel.metadata))


def test_head_is_the_newest_revision() -> None:
    """0009 is the newest revision (update this test when you add one: and write its upgrade test)."""
    assert "0009" == head()


def test_the_newest_revision_is_read_from_the_file_names_as_alembic_reads_it() -> None:
    assert head() == newest_revision()


OPEN_LEDGERS = (
    "import sys; from handoff.activities.ledger.database import create_schema, make_engine\n"
    "for url in sys.argv[1:]:\n"
    "    create_schema(make_engine(url)); print('alembic imported:', 'alembic' in sys.modules)"
)


def test_only_a_ledger_at_an_older_revision_imports_alembic(ledger_url: str, tmp_path: Path) -> None:
    """Every worker start opens the ledger: at head, that is one query; a new ledger is made from the models; neither
    imports Alembic and reads its scripts. A ledger at an older revision is upgraded by Alembic (the probe sees it:
    one process, a few seconds of imports, for the three)."""
    create_schema(make_engine(ledger_url))
    new_ledger, older_ledger = f"sqlite:///{tmp_path / 'new.db'}", f"sqlite:///{tmp_path / 'older.db'}"
    upgrade(older_ledger, "0008")

    opened = subprocess.run(
        [sys.executable, "-c", OPEN_LEDGERS, ledger_url, new_ledger, older_ledger],
        capture_output=True,
        text=True,
        timeout=60,
    )

    said = [line.split()[-1] for line in opened.stdout.splitlines() if line.startswith("alembic imported:")]
    assert (0, ["False", "False", "True"]) == (opened.returncode, said), opened  # the migration logs between
    assert [head()] * 2 == [current(new_ledger), current(older_ledger)]


def test_a_new_ledger_is_made_from_the_models_as_the_revisions_make_it(engine: Engine) -> None:
    """A new database is made from the models and stamped (`create_schema`); the same database made by running every
    revision has the same tables, columns, keys, indexes and constraints, and the same revision."""
    create_schema(engine)
    from_the_models = schema_of(engine)
    with engine.begin() as connection:
        SQLModel.metadata.drop_all(connection, tables=list(MODEL_TABLES))
        connection.exec_driver_sql("DROP TABLE alembic_version")
    assert [] == inspect(engine).get_table_names()

    upgrade(engine)

    assert from_the_models == schema_of(engine)
    assert {table.name for table in MODEL_TABLES} == LEDGER_TABLES


def test_a_database_with_tables_of_its_own_gets_a_new_ledger_beside_them(engine: Engine) -> None:
    """Tables that are not the ledger's (the user's own, in the same database) are left alone, and do not make the
    database look like an old ledger."""
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE their_own (id INTEGER PRIMARY KEY)")
        connection.exec_driver_sql("INSERT INTO their_own (id) VALUES (7)")
    create_schema(engine)
    assert head() == current(engine)
    # The ledger is the models' exactly; the one table the models do not have is theirs, with its row.
    assert [("remove_table", "their_own")] == [
        (change[0], change[1].name) if isinstance(change, tuple) else change for change in differences(engine)
    ]
    with engine.connect() as connection:
        assert [(7,)] == connection.exec_driver_sql("SELECT id FROM their_own").all()


def schema_of(engine: Engine) -> dict[str, Any]:
    """What the database says of each table, names of keys and constraints included (column order aside: a revision
    adds a column at the end), its views, sequences and enum types, the rows in each table, and the revision."""
    reflected = inspect(engine)
    dialect = engine.dialect

    def named(constraints: list[Any]) -> list[Any]:
        return sorted(
            (c.get("name"), c.get("constrained_columns") or c.get("column_names"), c.get("referred_table"))
            for c in constraints
        )

    tables: dict[str, Any] = {
        table: {
            "columns": sorted(
                (c["name"], c["type"].compile(dialect=dialect), c["nullable"], str(c.get("default")))
                for c in reflected.get_columns(table)
            ),
            "primary key": reflected.get_pk_constraint(table),
            "foreign keys": named(reflected.get_foreign_keys(table)),
            "indexes": sorted(
                (i["name"], i["column_names"], i["unique"], str(i.get("dialect_options")), str(i.get("expressions")))
                for i in reflected.get_indexes(table)
            ),
            "unique": named(reflected.get_unique_constraints(table)),
            "checks": sorted((c.get("name"), c["sqltext"]) for c in reflected.get_check_constraints(table)),
        }
        for table in reflected.get_table_names()
    }
    with engine.connect() as connection:
        rows = {table: connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() for table in tables}
    postgres = dialect.name == "postgresql"
    return {
        "tables": tables,
        "views": sorted(reflected.get_view_names()),
        "sequences": sorted(reflected.get_sequence_names()) if postgres else [],
        "enums": reflected.get_enums() if postgres else [],  # type: ignore[attr-defined]
        "rows": rows,
        "revision": current(engine),
    }


def test_migrated_schema_equals_the_models(engine: Engine) -> None:
    """A ledger upgraded to head through every revision has exactly the models' tables, columns, types, defaults,
    indexes and keys."""
    upgrade(engine)
    assert [] == differences(engine)
    assert (LEDGER_TABLES | {"alembic_version"}) == set(inspect(engine).get_table_names())
    assert head() == current(engine)


def test_upgrade_at_head_changes_nothing(engine: Engine) -> None:
    """Upgrading a ledger that is at head again (every worker start does) leaves its rows and revision alone."""
    create_schema(engine)
    record_stage_change(engine, _first_change("W-1"))
    before = _rows(engine)
    create_schema(engine)
    assert head() == upgrade(engine)
    assert before == _rows(engine)


def test_revisions_downgrade_and_upgrade_again(engine: Engine) -> None:
    """Every revision's downgrade runs (to an empty database) and the upgrade after it builds the models again.

    Going back to 0002, where everyone in the operators table decides for their groups, takes the groups of every
    role but operator away."""
    create_schema(engine)
    add_operator(engine, "otto", ["finance"], declared_groups=["finance"])
    add_operator(engine, "vera", ["finance"], declared_groups=["finance"], role=Role.VIEWER)
    with engine.connect() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0008")
        assert "notice_outbox" not in inspect(connection).get_table_names()
        command.downgrade(config, "0007")
        assert "undone_at" not in {column["name"] for column in inspect(connection).get_columns("deliveries")}
        command.downgrade(config, "0006")
        assert LATER_TABLES == LEDGER_TABLES - set(inspect(connection).get_table_names())
        command.downgrade(config, "0005")
        assert CASE_HISTORY_TABLES | LATER_TABLES == LEDGER_TABLES - set(inspect(connection).get_table_names())
        assert not {"claimed_by", "claimed_at"} & {
            column["name"] for column in inspect(connection).get_columns("cases")
        }
        command.downgrade(config, "0003")
        assert SOURCE_TABLES | CASE_HISTORY_TABLES | LATER_TABLES == LEDGER_TABLES - set(
            inspect(connection).get_table_names()
        )
        command.downgrade(config, "0002")
        assert "role" not in {column["name"] for column in inspect(connection).get_columns("operators")}
        groups = connection.exec_driver_sql("SELECT name, groups FROM operators ORDER BY name").all()
        assert [("otto", ["finance"]), ("vera", [])] == [(name, _json(value)) for name, value in groups]
        command.downgrade(config, "0001")
        assert {"refused_decisions", *SOURCE_TABLES, *CASE_HISTORY_TABLES, *LATER_TABLES} == LEDGER_TABLES - set(
            inspect(connection).get_table_names()
        )
        command.downgrade(config, "base")
        assert {"alembic_version"} == set(inspect(connection).get_table_names())
        connection.commit()
    create_schema(engine)
    assert [] == differences(engine)


def test_upgrade_keeps_every_row_of_a_0001_ledger(engine: Engine) -> None:
    """A 0001 ledger with rows in every table upgrades keeping every row and value; new columns get defaults."""
    assert "0001" == upgrade(engine, "0001")
    old = MetaData()
    old.reflect(engine)
    with engine.begin() as connection:
        for table, rows in ROWS_0001.items():
            connection.execute(old.tables[table].insert(), rows)
    before = _rows(engine)
    assert {table: len(rows) for table, rows in ROWS_0001.items()} == {t: len(rows) for t, rows in before.items()}

    assert head() == upgrade(engine)

    after = _rows(engine)
    kept = {
        table: [{column: row[column] for column in rows[0]} for row in after[table]] for table, rows in before.items()
    }
    assert before == kept
    with engine.connect() as connection:
        runs = connection.execute(select(SQLModel.metadata.tables["runs"]).order_by("workflow_id")).mappings().all()
    assert [("W-1", False, None), ("W-2", False, None)] == [
        (r["workflow_id"], r["override"], r["failure"]) for r in runs
    ]
    assert [] == after["refused_decisions"]
    assert [("maria", "operator")] == [(row["name"], row["role"]) for row in after["operators"]]
    assert [] == differences(engine)

    # New rows after old ones: PostgreSQL's id sequences carried on, and the new table and columns take writes.
    assert True is record_refusal(engine, _refusal("W-2"))
    assert True is record_stage_change(engine, _first_change("W-3"))
    assert True is record_stage_change(engine, _case_change("W-3"))
    assert False is record_stage_change(engine, _first_change("W-1"))
    assert [1, 2, 3, 4] == [row["id"] for row in _rows(engine)["violations"]]


def test_upgrade_to_0003_gives_every_existing_operator_the_operator_role(engine: Engine) -> None:
    """A 0002 ledger's operators keep their groups and token hashes and become operators (what they could do)."""
    assert "0002" == upgrade(engine, "0002")
    old = MetaData()
    old.reflect(engine)
    later = {**ROWS_0001["operators"][0], "name": "otto", "groups": ["finance"], "token_hash": "sha256$0b1c"}
    with engine.begin() as connection:
        connection.execute(old.tables["operators"].insert(), [*ROWS_0001["operators"], later])
    before = _rows(engine)["operators"]

    assert "0003" == upgrade(engine, "0003")

    after = _rows(engine)["operators"]
    assert [{**row, "role": "operator"} for row in before] == after
    upgrade(engine)  # the models are those of head: compare them there
    assert [] == differences(engine)
    # The default only filled the old rows: a new administrator is written with its own role and no group.
    token = add_operator(engine, "ada", [], declared_groups=[], role=Role.ADMINISTRATOR)
    assert [("ada", Role.ADMINISTRATOR, ()), ("maria", Role.OPERATOR, ("front-desk", "duty-manager"))] == [
        (o.name, o.role, o.groups) for o in list_operators(engine)[:2]
    ]
    found = operator_for_token(engine, token)
    assert found is not None and Role.ADMINISTRATOR == found.role


def test_upgrade_to_0004_adds_the_source_tables_and_keeps_every_row(engine: Engine) -> None:
    """A 0003 ledger with rows keeps them all; the new tables start empty and take sources, secrets and signatures,
    and a signature is recorded once only."""
    assert "0003" == upgrade(engine, "0003")
    add_operator(engine, "ada", [], declared_groups=[], role=Role.ADMINISTRATOR)
    _insert(engine, "runs", {**ROWS_0001["runs"][0], "override": False, "failure": None})
    before = _rows(engine)

    assert "0004" == upgrade(engine, "0004")

    after = _rows(engine)
    assert {table: [] for table in SOURCE_TABLES} == {table: after.pop(table) for table in SOURCE_TABLES}
    assert before == after
    upgrade(engine)  # the models are those of head: compare them there
    assert [] == differences(engine)
    first = add_source(engine, "till", ["order.placed"], known_events=["order.placed"])
    second = rotate_secret(engine, "till")
    found = signing_source(engine, "till")
    assert found is not None and ((second, first), frozenset({"order.placed"})) == (found.secrets, found.events)
    expires_at = datetime.now(UTC) + timedelta(minutes=5)
    assert [True, False] == [remember_signatures(engine, "till", ["ab12"], expires_at=expires_at) for _ in range(2)]


def test_upgrade_to_0006_adds_case_history_and_keeps_every_case(engine: Engine) -> None:
    """A 0005 ledger's cases are kept, held by nobody; the new tables start empty, and a notice is recorded once."""
    assert "0005" == upgrade(engine, "0005")
    runs = [{**run, "override": False, "failure": None, "purged_at": None} for run in ROWS_0001["runs"]]
    _insert(engine, "runs", *runs)
    _insert(engine, "cases", *ROWS_0001["cases"])
    before = _rows(engine)

    assert "0006" == upgrade(engine, "0006")

    after = _rows(engine)
    assert {table: [] for table in CASE_HISTORY_TABLES} == {table: after.pop(table) for table in CASE_HISTORY_TABLES}
    assert [{**case, "claimed_by": None, "claimed_at": None} for case in before["cases"]] == after["cases"]
    notice = {"case_id": "W-1/case-1", "workflow_id": "W-1", "event": "opened", "owner_group": "g", "notifier": "slack"}
    _insert(engine, "notices", {**notice, "sent_at": T0})
    with pytest.raises(IntegrityError):
        _insert(engine, "notices", {**notice, "sent_at": T0})


def test_a_ledger_from_before_migrations_is_adopted(engine: Engine) -> None:
    """A ledger that create_all made (no alembic_version) is stamped at 0002, not created twice, then upgraded.

    Its tables are those of 0002, which create_all made before migrations existed: built here by migrating to 0002
    and forgetting the revision, since today's create_all would make today's tables."""
    upgrade(engine, "0002")
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE alembic_version")
    _insert(engine, "runs", {**ROWS_0001["runs"][0], "override": False, "failure": None})
    before = _rows(engine)
    create_schema(engine)
    assert (head(), []) == (current(engine), differences(engine))
    after = {
        table: _without(_without(rows, "role"), "purged_at")
        for table, rows in _rows(engine).items()
        if table not in SOURCE_TABLES | CASE_HISTORY_TABLES | LATER_TABLES
    }
    assert before == after


def test_foreign_tables_without_a_revision_are_refused(engine: Engine) -> None:
    """A database with a `runs` table that Handoff did not make is not touched: MigrationError says what to do."""
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    with pytest.raises(MigrationError, match="not a ledger Handoff created"):
        create_schema(engine)
    assert None is current(engine)


def test_a_ledger_from_a_newer_handoff_is_refused(engine: Engine) -> None:
    """A ledger at a revision this code does not know (a newer Handoff migrated it) is refused, and left alone."""
    create_schema(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(MigrationError, match="revision 0099, which this version of Handoff does not know"):
        create_schema(engine)
    assert "0099" == current(engine)


RACE = """
import sys, time
from pathlib import Path
from handoff.activities.ledger.database import create_schema, make_engine
go = Path(sys.argv[2])
Path(sys.argv[3]).touch()
while not go.exists():
    time.sleep(0.01)
engine = make_engine(sys.argv[1])
create_schema(engine)
engine.dispose()
"""


@pytest.mark.parametrize("at", [None, "0008"], ids=["new", "at-0008"])
def test_racing_processes_migrate_once(ledger_url: str, tmp_path: Path, at: str | None) -> None:
    """Two processes that start the same ledger at the same moment both succeed; it ends at head, once: a new one
    made from the models by one of them, one at an older revision upgraded by Alembic by one of them."""
    if at is not None:
        upgrade(ledger_url, at)
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, ledger_url, str(go), str(flag)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for flag in ready
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
            time.sleep(0.02)
        go.touch()
        outputs = [process.communicate(timeout=60)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert [0, 0] == [process.returncode for process in processes], "\n".join(outputs)
    said = "\n".join(outputs)
    assert (1 if at is None else 0, 0 if at is None else 1) == (
        said.count("ledger.created"),
        said.count("ledger.migrated"),
    ), said
    engine = make_engine(ledger_url)
    try:
        assert (head(), []) == (current(engine), differences(engine))
        with engine.connect() as connection:
            versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        assert [(head(),)] == versions
    finally:
        engine.dispose()


# `handoff migrate` as the console script runs it.
HANDOFF = "from handoff.workers.cli import main; main()"


def migrate_env(ledger_url: str, home: Path) -> dict[str, str]:
    return {
        "PATH": str(Path(sys.executable).parent),
        "LANG": "C.UTF-8",
        "HANDOFF_HOME": str(home),
        "HANDOFF_DATABASE_URL": ledger_url,
        "HANDOFF_LOG_FORMAT": "json",
    }


def handoff_migrate(ledger_url: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`handoff migrate` in a process of its own, through the console script's `main`."""
    return subprocess.run(
        [sys.executable, "-c", HANDOFF, "migrate", *args],
        env=migrate_env(ledger_url, home),
        capture_output=True,
        text=True,
        timeout=60,
    )


def handoff_migrate_here(ledger_url: str, home: Path, *args: str) -> Result:
    """`handoff migrate` run in this process by Typer's runner: the same command, without a second of imports."""
    with restored_logging():
        return CliRunner().invoke(cli_app, ["migrate", *args], env=migrate_env(ledger_url, home))


def test_handoff_migrate_upgrades_and_reports_the_revision(ledger_url: str, tmp_path: Path) -> None:
    """`handoff migrate --revision 0001`, then `--current` says 0001 and that 0009 is newest, then `handoff migrate`
    (the last as the console script, in a process of its own)."""
    to_0001 = handoff_migrate_here(ledger_url, tmp_path, "--revision", "0001")
    shown = handoff_migrate_here(ledger_url, tmp_path, "--current")
    to_head = handoff_migrate(ledger_url, tmp_path)

    assert (0, 0, 0) == (to_0001.exit_code, shown.exit_code, to_head.returncode), to_0001.output + to_head.stderr
    assert "is at revision 0001." in to_0001.stdout
    assert "0001  (newest is 0009: run `handoff migrate`)" == shown.stdout.strip()
    assert "is at revision 0009." in to_head.stdout
    password = make_url(ledger_url).password
    assert not password or str(password) not in to_head.stdout  # the URL is shown without its password
    assert head() == current(ledger_url)


def test_handoff_migrate_refuses_an_unknown_revision(tmp_path: Path) -> None:
    """An unknown revision exits 2, names it, and leaves the ledger unmigrated."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = handoff_migrate(url, tmp_path, "--revision", "9999")
    assert 2 == result.returncode
    assert "Cannot migrate the ledger" in result.stderr
    assert "9999" in result.stderr
    assert None is current(url)


def _first_change(workflow_id: str) -> StageChange:
    stamp = RunStamp(
        handoff="order-to-kitchen",
        event="order.placed",
        dedupe_key=workflow_id,
        contract_version=1,
        contract_hash="abc123",
        payload={"order": {"id": workflow_id}},
        received_at=T0,
    )
    return StageChange(workflow_id=workflow_id, step=1, stage=Stage.VALIDATING, at=T0, run=stamp)


def _case_change(workflow_id: str) -> StageChange:
    case = ExceptionCase(
        id=f"{workflow_id}/case-1",
        handoff="order-to-kitchen",
        workflow_id=workflow_id,
        violations=[Violation(rule="order.total_cents > 0", kind="min", field="order.total_cents", reason="empty")],
        payload={},
        owner_group="kitchen",
        opened_at=T0,
        sla_deadline=T0 + timedelta(hours=1),
        allowed=[DecisionKind.REJECT],
    )
    return StageChange(workflow_id=workflow_id, step=2, stage=Stage.AWAITING_DECISION, at=T0, case=case, failure="x")


def _refusal(workflow_id: str) -> RefusalRecord:
    request = DecisionRequest(case_id="C-1", decision=DecisionKind.REJECT, operator="ops", reason="duplicate order")
    return RefusalRecord(
        workflow_id=workflow_id,
        handoff="order-to-kitchen",
        sequence=0,
        refused=RefusedDecision(request=request, refusal="already decided", at=T0 + timedelta(hours=1)),
    )


def _rows(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table (but alembic_version), by primary key, with times in UTC."""
    found = MetaData()
    found.reflect(engine)
    tables: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as connection:
        for table in found.sorted_tables:
            if table.name == "alembic_version":
                continue
            rows = connection.execute(select(table).order_by(*table.primary_key.columns)).mappings().all()
            tables[table.name] = [{key: _utc(value) for key, value in row.items()} for row in rows]
    return tables


def _insert(engine: Engine, table: str, *rows: dict[str, Any]) -> None:
    """Rows written through the tables the ledger has at its revision: today's models may have columns it lacks."""
    old = MetaData()
    old.reflect(engine)
    with engine.begin() as connection:
        connection.execute(old.tables[table].insert(), list(rows))


def _json(value: Any) -> Any:
    """A JSON column read with raw SQL: text on SQLite, decoded already by psycopg."""
    return json.loads(value) if isinstance(value, str) else value


def _without(rows: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
    return [{key: value for key, value in row.items() if key != column} for row in rows]


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


ROWS_0001: dict[str, list[dict[str, Any]]] = {
    "runs": [
        {
            "workflow_id": "W-1",
            "handoff": "reservation-to-pos",
            "event": "reservation.confirmed",
            "dedupe_key": "R-1",
            "contract_version": 2,
            "contract_hash": "9f2c",
            "stage": "delivered",
            "last_step": 5,
            "payload": {"reservation": {"id": "R-1", "party_size": 14, "notes": "Fenêtre ☀"}, "guest": {"vip": True}},
            "received_at": T0,
            "updated_at": T0 + timedelta(minutes=12),
            "finished_at": T0 + timedelta(minutes=12),
        },
        {
            "workflow_id": "W-2",
            "handoff": "lead-to-invoice",
            "event": "deal.won",
            "dedupe_key": "D-2",
            "contract_version": 1,
            "contract_hash": "77aa",
            "stage": "awaiting-decision",
            "last_step": 2,
            "payload": {"deal": {"id": "D-2", "amount_cents": 1250000, "discount_pct": 12.5}},
            "received_at": T0 + timedelta(hours=1),
            "updated_at": T0 + timedelta(hours=1, seconds=3),
            "finished_at": None,
        },
    ],
    "cases": [
        {
            "id": "W-1/case-1",
            "workflow_id": "W-1",
            "handoff": "reservation-to-pos",
            "owner_group": "duty-manager",
            "status": "decided",
            "opened_at": T0 + timedelta(minutes=1),
            "sla_deadline": T0 + timedelta(minutes=61),
            "decided_at": T0 + timedelta(minutes=11),
            "decision": "approve",
            "allowed": ["approve", "reject", "correct"],
            "payload": {"reservation": {"party_size": 14}},
        },
        {
            "id": "W-2/case-1",
            "workflow_id": "W-2",
            "handoff": "lead-to-invoice",
            "owner_group": "finance",
            "status": "open",
            "opened_at": T0 + timedelta(hours=1, seconds=2),
            "sla_deadline": T0 + timedelta(hours=5),
            "decided_at": None,
            "decision": None,
            "allowed": ["correct", "reject"],
            "payload": {"deal": {"discount_pct": 12.5}},
        },
    ],
    "violations": [
        {
            "case_id": "W-1/case-1",
            "position": 0,
            "rule": "reservation.party_size <= 12",
            "kind": "max",
            "field": "reservation.party_size",
            "value": 14,
            "reason": "larger than the largest table",
        },
        {
            "case_id": "W-2/case-1",
            "position": 0,
            "rule": "deal.discount_pct <= 10",
            "kind": "max",
            "field": "deal.discount_pct",
            "value": 12.5,
            "reason": "above the discount policy",
        },
        {
            "case_id": "W-2/case-1",
            "position": 1,
            "rule": "deal.po_number required",
            "kind": "required",
            "field": "deal.po_number",
            "value": None,
            "reason": "finance needs a PO",
        },
    ],
    "decisions": [
        {
            "case_id": "W-1/case-1",
            "workflow_id": "W-1",
            "handoff": "reservation-to-pos",
            "decision": "approve",
            "operator": "maria",
            "group": "duty-manager",
            "reason": "two tables joined",
            "patch": {},
            "decided_at": T0 + timedelta(minutes=11),
            "by_timeout": False,
        }
    ],
    "escalations": [
        {
            "case_id": "W-1/case-1",
            "workflow_id": "W-1",
            "from_group": "front-desk",
            "to_group": "duty-manager",
            "at": T0 + timedelta(minutes=31),
        }
    ],
    "deliveries": [
        {
            "workflow_id": "W-1",
            "system": "pos",
            "handoff": "reservation-to-pos",
            "record_key": "W-1",
            "fields": {"covers": 14, "table": "T7+T8"},
            "delivered_at": T0 + timedelta(minutes=12),
        }
    ],
    "operators": [
        {
            "name": "maria",
            "groups": ["front-desk", "duty-manager"],
            "token_hash": "sha256$5e884898da28",
            "created_at": T0 - timedelta(days=30),
        }
    ],
}


def test_upgrade_to_0009_marks_no_delivery_undone_and_queues_each_notice_once(engine: Engine) -> None:
    """0008: a 0007 ledger's deliveries read as standing (not undone). 0009: the outbox starts empty, and holds a
    notice once per case, event and group."""
    assert "0007" == upgrade(engine, "0007")
    runs = [{**run, "override": False, "failure": None, "purged_at": None} for run in ROWS_0001["runs"]]
    _insert(engine, "runs", *runs)
    _insert(engine, "deliveries", *ROWS_0001["deliveries"])
    before = _rows(engine)

    assert "0009" == upgrade(engine)

    after = _rows(engine)
    assert [] == after.pop("notice_outbox")
    assert [{**delivery, "undone_at": None} for delivery in before["deliveries"]] == after["deliveries"]
    assert [] == differences(engine)
    notice = {"case_id": "W-1/case-1", "event": "opened", "owner_group": "g", "workflow_id": "W-1", "handoff": "h"}
    row = {**notice, "notice": {}, "attempts": 0, "due_at": T0}
    _insert(engine, "notice_outbox", row)
    with pytest.raises(IntegrityError):
        _insert(engine, "notice_outbox", row)
