"""The restaurant's business systems: real SQL tables in one database, each behind an adapter, plus look-ups.

A real deployment would call each system's API; here they are tables, so the demo and the tests can see what
arrived. Every method blocks (SQLAlchemy Core on a synchronous driver): Handoff runs plain adapters and look-ups in
a thread, so the engine is shared across threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Engine, Row, Table, create_engine, event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

from examples.restaurant.systems.checks import CHECKS
from examples.restaurant.systems.seed import seed
from examples.restaurant.systems.tables import KEY_COLUMNS, METADATA, SYSTEM_TABLES
from examples.restaurant.systems.values import accepted, to_column
from handoff import SystemAdapter, TargetField, UnknownField, WriteOutcome

log = structlog.get_logger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another writer's lock before failing: concurrent deliveries queue up."""


class TableAdapter:
    """A `SystemAdapter` over one SQL table: one row per record key, written once."""

    def __init__(self, system: str, engine: Engine, table: Table) -> None:
        self.system = system
        self._engine = engine
        self._table = table
        self._log = log.bind(system=system)

    @property
    def fields(self) -> tuple[str, ...]:
        """The field names this system accepts in `write`."""
        return tuple(column.name for column in self._table.columns if column.name not in KEY_COLUMNS)

    @property
    def accepts(self) -> dict[str, TargetField]:
        """What each field holds (its column's kind, length, range): the readiness gate checks every sync against it."""
        return {column.name: accepted(column) for column in self._table.columns if column.name not in KEY_COLUMNS}

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        """Insert one row for `record_key`, unless there is one: the table's key on `record_key` is the guard."""
        logger = self._log.bind(record_key=record_key)
        known = self.fields
        unknown = sorted(set(fields) - set(known))
        if unknown:
            logger.warning("system.write_refused", unknown_fields=unknown)
            raise UnknownField(self.system, unknown, known)
        values = {name: to_column(self.system, self._table.c[name], value) for name, value in fields.items()}

        # Reading first spares a retry the failed insert; the unique key still decides between concurrent writers.
        if self._exists(record_key):
            logger.info("system.write", outcome=WriteOutcome.ALREADY_WRITTEN)
            return WriteOutcome.ALREADY_WRITTEN
        row = {**values, "record_key": record_key, "written_at": datetime.now(UTC)}
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(self._table).values(row))
        except IntegrityError:
            if not self._exists(record_key):
                raise  # a constraint other than the key: a real error, not a concurrent writer
            logger.info("system.write", outcome=WriteOutcome.ALREADY_WRITTEN, concurrent=True)
            return WriteOutcome.ALREADY_WRITTEN
        logger.info("system.write", outcome=WriteOutcome.WRITTEN, fields=sorted(values))
        return WriteOutcome.WRITTEN

    def read(self, record_key: str) -> dict[str, Any] | None:
        """The row written under `record_key`: its non-null columns, typed (datetimes are UTC-aware)."""
        with self._engine.connect() as connection:
            row = connection.execute(select(self._table).where(self._table.c.record_key == record_key)).first()
        return None if row is None else _present(row)

    def rows(self) -> list[dict[str, Any]]:
        """Every row, oldest first, shaped like `read`."""
        with self._engine.connect() as connection:
            result = connection.execute(
                select(self._table).order_by(self._table.c.written_at, self._table.c.record_key)
            )
            return [_present(row) for row in result]

    def _exists(self, record_key: str) -> bool:
        with self._engine.connect() as connection:
            found = connection.execute(
                select(self._table.c.record_key).where(self._table.c.record_key == record_key)
            ).first()
        return found is not None


def _present(row: Row[Any]) -> dict[str, Any]:
    return {name: value for name, value in row._mapping.items() if value is not None}


class RestaurantSystems:
    """The seven demo systems in one database: adapters to deliver into, look-ups to validate against.

    Nothing touches the database until the first write or look-up: `handoff check` imports the app without a
    database; the worker creates the tables and the reference data (idempotently) when it first needs them.
    """

    def __init__(self, url: str) -> None:
        self._engine = create_systems_engine(url)
        self._tables = {system: TableAdapter(system, self._engine, table) for system, table in SYSTEM_TABLES.items()}
        self._prepared = False
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Create the systems' tables and add the demo data that is missing (once per process)."""
        with self._lock:
            if not self._prepared:
                _create_tables(self._engine)
                seed(self._engine, self._tables)
                self._prepared = True

    def adapter(self, system: str) -> SystemAdapter:
        """The adapter the app registers for `system`."""
        return _PreparedTable(self, self._tables[system])

    def look_up(self, name: str) -> Callable[[Any], bool]:
        """The look-up `name` as the app registers it: value in, whether it holds out."""
        check = CHECKS[name]

        def look_up(value: Any) -> bool:
            self.prepare()
            with self._engine.connect() as connection:
                holds = check(connection, value)
            log.debug("systems.check", check=name, value=value, holds=holds)
            return holds

        return look_up

    def rows(self, system: str) -> list[dict[str, Any]]:
        """Every row `system` holds, oldest first: for tests and for the demo to show what arrived."""
        self.prepare()
        return self._tables[system].rows()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> RestaurantSystems:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.dispose()


class _PreparedTable:
    """A table's adapter that makes sure the systems exist before it writes or reads."""

    def __init__(self, systems: RestaurantSystems, table: TableAdapter) -> None:
        self._systems = systems
        self._table = table

    @property
    def fields(self) -> tuple[str, ...]:
        return self._table.fields

    @property
    def accepts(self) -> dict[str, TargetField]:
        return self._table.accepts

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        self._systems.prepare()
        return self._table.write(record_key, fields)

    def read(self, record_key: str) -> dict[str, Any] | None:
        self._systems.prepare()
        return self._table.read(record_key)


def create_systems_engine(url: str) -> Engine:
    """An engine for the systems database. SQLite gets what concurrent threads need: WAL and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
    if in_memory:
        # One shared connection, else every pooled connection would see its own empty database.
        engine = create_engine(parsed, connect_args={"check_same_thread": False}, poolclass=StaticPool)
    else:
        engine = create_engine(parsed, connect_args={"check_same_thread": False})
        if not database.startswith("file:"):

            @event.listens_for(engine, "do_connect")
            def _make_directory(*_arguments: Any) -> None:
                # On the first connection, not when the app is imported (`handoff check` touches no database).
                Path(database).parent.mkdir(parents=True, exist_ok=True)

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    return engine


def _create_tables(engine: Engine) -> None:
    try:
        METADATA.create_all(engine)
    except (OperationalError, ProgrammingError):
        # Two processes starting at once (worker and API) may both find a table missing; the loser looks again.
        METADATA.create_all(engine)
