"""Real ledger databases for the activities' tests: a SQLite file always, a fresh PostgreSQL database when one is set.

PostgreSQL comes from HANDOFF_TEST_POSTGRES_URL (`.ci/run` starts a throwaway server and sets it). Each test gets a
database of its own, created on that server and dropped afterwards, so runs never see each other's rows. Without
the variable the PostgreSQL half is skipped on a workstation and fails in CI (CI=true), where it must not go
missing silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from activities.ledger.database import create_schema, make_engine

POSTGRES_URL_VARIABLE = "HANDOFF_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty ledger database: a SQLite file, or a new PostgreSQL database dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    server = os.environ.get(POSTGRES_URL_VARIABLE)
    if not server:
        message = (
            f"{POSTGRES_URL_VARIABLE} is not set, so the ledger was not tested on PostgreSQL. "
            "Set it to postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB (a user who may CREATE DATABASE)."
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} In CI, .ci/run should have started PostgreSQL and set it: see its output.")
        pytest.skip(message)
    yield from _fresh_postgres_database(server)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Engine]:
    """An engine on a ledger migrated to the newest revision; disposed after the test."""
    engine = make_engine(ledger_url)
    try:
        create_schema(engine)
        yield engine
    finally:
        engine.dispose()


def _fresh_postgres_database(server_url: str) -> Iterator[str]:
    server = make_url(server_url)
    name = f"handoff_test_{uuid.uuid4().hex[:12]}"
    # CREATE / DROP DATABASE cannot run in a transaction: an autocommit engine on the server's own database.
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                # FORCE: a connection the test leaked must not keep the database (and the next run) alive.
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
