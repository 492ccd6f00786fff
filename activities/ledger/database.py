"""The ledger's engine, sessions and schema: one place that knows how to reach the database (SQLite or PostgreSQL)
and bring its tables to the newest revision (with Alembic, `migrate.py`, only for a ledger that needs upgrading)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Column, Connection, Engine, MetaData, PrimaryKeyConstraint, String, Table, create_engine, event
from sqlalchemy import inspect as inspect_database
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel

from handoff.activities.ledger.tables import LEDGER_TABLES

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
"""Alembic's script location: env.py, the revision template and `versions/` (`migrate.py` configures Alembic)."""


def make_engine(url: str) -> Engine:
    """An engine for the ledger at `url`. For SQLite, the file's folder is created and WAL is switched on, so the
    worker, the API and the CLI can read while one of them writes."""
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


SCHEMA_LOCK_KEY = zlib.crc32(b"handoff.ledger.migrate")
"""PostgreSQL advisory lock id (per database) held while the schema is made or migrated."""

ALEMBIC_VERSION = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
"""Where Alembic keeps the revision, as Alembic itself creates it: a ledger made from the models is stamped here."""


def create_schema(engine: Engine) -> None:
    """Bring the ledger's tables up to the newest revision: a no-op when they are there, safe from two processes.

    The worker, the API and the tests call this on start; `handoff migrate` runs the revisions as a separate step.
    - A ledger at the newest revision, every start but the first, is told by one query, without importing Alembic and
      reading its scripts (0.2 s of a worker's start here).
    - A new database (none of the ledger's tables, no revision) is made from the models and stamped at the newest
      revision, as Alembic's cookbook builds a database from scratch: 0.08 s, where running the nine revisions with
      Alembic's import took 0.77 s (one process, under load). `test_migrations` keeps the two ways' schemas equal.
    - Any other ledger (at an older revision, or made before the ledger had revisions) is upgraded by Alembic.
    """
    revision = revision_of(engine)
    if revision == newest_revision() or (revision is None and _made_from_the_models(engine)):
        return
    from handoff.activities.ledger.migrate import upgrade  # migrate builds on this module's make_engine

    upgrade(engine)


def lock_the_schema(connection: Connection) -> None:
    """Take the lock that serialises schema changes, for the rest of `connection`'s transaction."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})")
    elif dialect == "sqlite":
        # The driver leaves DDL outside transactions unless one is open: open it, and take the write lock now, so a
        # second process waits here (busy_timeout) instead of failing half way.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _made_from_the_models(engine: Engine) -> bool:
    """Whether the ledger is at the newest revision after making it from the models, under the schema lock, in one
    transaction, if the database has none of its tables and no revision. Another process may have made it while this
    one waited for the lock: at the newest revision, nothing more to do. Tables without a revision, or at another
    revision: False, nothing done here (Alembic's path adopts or upgrades them, or says why it cannot)."""
    newest = newest_revision()
    with engine.connect() as connection:
        lock_the_schema(connection)
        present = set(inspect_database(connection).get_table_names())
        if present & {ALEMBIC_VERSION.name, *(table.name for table in LEDGER_TABLES)}:
            made_meanwhile = ALEMBIC_VERSION.name in present and connection.scalar(ALEMBIC_VERSION.select()) == newest
            connection.rollback()
            return made_meanwhile
        SQLModel.metadata.create_all(connection, tables=list(LEDGER_TABLES))
        ALEMBIC_VERSION.create(connection)
        connection.execute(ALEMBIC_VERSION.insert().values(version_num=newest))
        connection.commit()
    log.info("ledger.created", database=engine.url.render_as_string(hide_password=True), revision=newest)
    return True


def newest_revision() -> str:
    """The newest revision's id, read from the revision files' names (`0009_notice_outbox.py` is revision 0009, as
    `migrate.new_revision` writes them): Alembic's head, which a test keeps equal."""
    return max(path.name.split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def revision_of(engine: Engine) -> str | None:
    """The revision the ledger is at, as Alembic records it; None for a database that was never migrated."""
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except DBAPIError:  # no alembic_version table: a new database, or one made before migrations
        return None


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session for a write, which commits when the block succeeds and rolls back when it raises.

    On SQLite the session takes the database's write lock as it starts (`BEGIN IMMEDIATE`): the driver would
    otherwise read outside any transaction and lock only at the first write, so a read-check-write (the ledger's
    idempotency checks) could act on what it read before another writer committed. PostgreSQL gets the same from
    `with_for_update` and unique keys. Readers are not blocked (WAL); other writers wait up to the busy timeout.
    """
    with Session(engine, expire_on_commit=False) as session:
        try:
            if engine.dialect.name == "sqlite":
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
