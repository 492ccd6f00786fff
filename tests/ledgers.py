"""Real ledger databases for tests: a SQLite file and a fresh PostgreSQL database, every run (fixtures for all tests).

PostgreSQL is the session's server (tests/postgres.py: embedded, or HANDOFF_TEST_POSTGRES_URL). Each test gets a
database of its own, created on that server and dropped afterwards, so tests never see each other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from handoff.activities.ledger.database import create_schema, make_engine
from tests.postgres import postgres_server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The session's PostgreSQL server, started on first use."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty ledger database: a SQLite file, or a new PostgreSQL database dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    yield from _fresh_postgres_database(request.getfixturevalue("postgres_url"))


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
