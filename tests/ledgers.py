"""Real ledger databases for tests: a SQLite file and a fresh PostgreSQL database, every run (fixtures for all tests).

PostgreSQL is the session's server (tests/postgres.py: embedded, or HANDOFF_TEST_POSTGRES_URL). Each test gets a
database of its own, created on that server and dropped afterwards, so tests never see each other's rows.

A test that takes `ledger` (a ledger at the newest revision) gets a copy of one this session made once: a copy of
the file on SQLite, a database made from a template on PostgreSQL. The template is made as every new ledger is
(`create_schema`: from the models, stamped at the newest revision), without doing so again for each of several
hundred tests. The migrations themselves are tested on empty databases (`ledger_url`,
tests/activities/test_migrations.py), which also keeps the two ways to the newest schema equal.
"""

from __future__ import annotations

import shutil
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
    """The URL of an empty ledger database: a SQLite file, or a new PostgreSQL database dropped after the test.

    When the test takes `ledger` too, the database starts as a copy of the session's migrated one instead (`ledger`
    would migrate it to the newest revision before the test anyway)."""
    migrated = "ledger" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template") if migrated else None
    yield from _fresh_postgres_database(request.getfixturevalue("postgres_url"), template=template)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Engine]:
    """An engine on a ledger migrated to the newest revision; disposed after the test."""
    engine = make_engine(ledger_url)
    try:
        create_schema(engine)  # at the newest revision already when copied: the no-op every worker start makes
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite ledger this session migrated to the newest revision, for `ledger_url` to copy."""
    path = tmp_path_factory.mktemp("ledger-template") / "ledger.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        create_schema(engine)
        with engine.connect() as connection:
            # Everything into the file itself, so that copying the file alone copies the whole ledger.
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str) -> Iterator[str]:
    """The name of a database on the session's server migrated to the newest revision, for `ledger_url` to copy.

    PostgreSQL copies a template only while nobody is connected to it: the engine that migrated it is disposed."""
    server = make_url(postgres_url)
    name = f"handoff_template_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine = make_engine(server.set(database=name).render_as_string(hide_password=False))
        try:
            create_schema(engine)
        finally:
            engine.dispose()
        yield name
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def copy_migrated_ledger(ledger_url: str, template: Path) -> None:
    """Put a copy of `template` (`sqlite_template`) where the SQLite ledger at `ledger_url` will be, for a kit to
    open at the newest revision without migrating it (as every worker start after the first); a no-op for a ledger
    that is not a SQLite file."""
    if ledger_url.startswith("sqlite:///"):
        path = Path(ledger_url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(template, path)


def _fresh_postgres_database(server_url: str, *, template: str | None = None) -> Iterator[str]:
    server = make_url(server_url)
    name = f"handoff_test_{uuid.uuid4().hex[:12]}"
    copied = f' TEMPLATE "{template}"' if template else ""
    # CREATE / DROP DATABASE cannot run in a transaction: an autocommit engine on the server's own database.
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"{copied}')
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                # FORCE: a connection the test leaked must not keep the database (and the next run) alive.
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
