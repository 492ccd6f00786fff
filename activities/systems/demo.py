"""The demo business systems: real SQL tables in one database, each behind a `SystemAdapter`, plus their look-ups.

The demo and the tests deliver into these; a deployment replaces an adapter with one that calls the real system's
API. Every method blocks (SQLAlchemy Core on a synchronous driver): activities call them through `asyncio.to_thread`,
so the engine is shared across threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from sqlalchemy import Engine, Row, Table, create_engine, event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

from handoff.activities.systems.adapter import SystemAdapter, UnknownField, WriteOutcome
from handoff.activities.systems.checks import CHECKS
from handoff.activities.systems.seed import seed
from handoff.activities.systems.tables import KEY_COLUMNS, METADATA, SYSTEM_TABLES
from handoff.activities.systems.values import to_column

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


class DemoSystems:
    """The seven demo business systems in one database: adapters to deliver into, look-ups to validate against."""

    known_systems: frozenset[str] = frozenset(SYSTEM_TABLES)
    known_checks: frozenset[str] = frozenset(CHECKS)

    def __init__(self, url: str) -> None:
        """Connect to `url` (any SQLAlchemy URL) and create the systems' tables that are missing."""
        self._engine = create_systems_engine(url)
        try:
            _create_tables(self._engine)
        except BaseException:
            self._engine.dispose()
            raise
        self._adapters = {system: TableAdapter(system, self._engine, table) for system, table in SYSTEM_TABLES.items()}

    def seed(self) -> None:
        """Add the demo data that is missing (floor plan, menu, blocked accounts, a few source rows)."""
        seed(self._engine, self._adapters)

    def adapter(self, system: str) -> SystemAdapter:
        """The adapter of `system`; a `KeyError` that lists the known systems otherwise."""
        return self._table_adapter(system)

    def check(self, name: str, value: Any) -> bool:
        """Run the look-up `name` on `value`; a `KeyError` that lists the known checks for an unknown name."""
        try:
            look_up = CHECKS[name]
        except KeyError:
            raise KeyError(f"no look-up check named {name!r} in the demo systems (known: {_listed(CHECKS)})") from None
        with self._engine.connect() as connection:
            holds = look_up(connection, value)
        log.debug("systems.check", check=name, value=value, holds=holds)
        return holds

    def rows(self, system: str) -> list[dict[str, Any]]:
        """Every row `system` holds, oldest first: for tests and for the demo to show what arrived."""
        return self._table_adapter(system).rows()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> DemoSystems:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.dispose()

    def _table_adapter(self, system: str) -> TableAdapter:
        try:
            return self._adapters[system]
        except KeyError:
            raise KeyError(
                f"no system named {system!r} in the demo systems (known: {_listed(SYSTEM_TABLES)})"
            ) from None


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
        if not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False})

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


def _listed(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))
