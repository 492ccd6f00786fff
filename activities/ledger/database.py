"""The ledger's engine and sessions: one place that knows how to reach the database (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from handoff.activities.ledger import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

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


def create_schema(engine: Engine) -> None:
    """Bring the ledger's tables up to the newest revision: a no-op when they are there, safe from two processes.

    The worker, the API and the tests call this on start; `handoff migrate` does the same as a separate step. A
    ledger at the newest revision, every start but the first, is told by one query, without importing Alembic and
    reading its scripts (0.2 s of a worker's start here).
    """
    if revision_of(engine) == newest_revision():
        return
    from handoff.activities.ledger.migrate import upgrade  # migrate builds on this module's make_engine

    upgrade(engine)


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
