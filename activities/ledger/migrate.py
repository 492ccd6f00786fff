"""The ledger's schema, brought up to date with Alembic from code: the worker, the API, the tests, `handoff migrate`.

The revisions live in `activities/ledger/migrations/` and ship in the package; Alembic is configured here, so no
alembic.ini is needed. One upgrade at a time: on PostgreSQL an advisory lock serialises migrators, on SQLite the
upgrade runs inside one `BEGIN IMMEDIATE` transaction (SQLite's DDL is transactional, so a failed upgrade leaves
nothing half done). A second process that waited for the lock finds the ledger at head and changes nothing. (A new
database is made from the models instead, by `database.create_schema`, under the same lock; `upgrade` itself, and so
`handoff migrate`, always runs the revisions.)

To write a new revision, change `tables.py`, then

    .venv/bin/python -c "from handoff.activities.ledger.migrate import new_revision; new_revision('what changed')"

and hand-check the file it writes on SQLite and PostgreSQL (tests/activities/test_migrations.py runs both). Until
the revision exists, a new ledger made from the changed models is stamped at the revision before it, with the new
columns already there: delete such a scratch ledger once the revision is written (committed code cannot do this:
a test keeps the models equal to the revisions).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect

from handoff.activities.ledger.database import MIGRATIONS, lock_the_schema, make_engine, revision_of

log = structlog.get_logger(__name__)

UNVERSIONED_REVISION = "0002"
"""The revision of a ledger made by `create_all` before the ledger had migrations (it has no alembic_version)."""
UNVERSIONED_TABLES = frozenset(
    {"runs", "cases", "violations", "decisions", "escalations", "refused_decisions", "deliveries", "operators"}
)
"""The tables such a ledger has."""


class MigrationError(Exception):
    """The ledger's schema cannot be brought up to date automatically; the message says why and what to do."""


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for the ledger, with the packaged revisions; `url` only for Alembic's own commands."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # the option is interpolated
    return config


def head() -> str:
    """The newest revision."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise MigrationError(f"no revisions under {MIGRATIONS}")
    return revision


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> str | None:
    """Upgrade the ledger to `revision` (default: the newest) and return the revision it is at afterwards.

    Safe to call from several processes at once, and a no-op when the ledger is there already.
    """
    engine, owned = _engine(engine_or_url)
    try:
        if revision == "head" and revision_of(engine) == (newest := head()):
            return newest  # the common case (every start of a worker or the API): no lock, no write
        with engine.connect() as connection:
            lock_the_schema(connection)
            before = MigrationContext.configure(connection).get_current_revision()
            if before is None:
                _adopt_unversioned(connection)
            else:
                _check_known(connection, before)
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            after = MigrationContext.configure(connection).get_current_revision()
            connection.commit()
        if before != after:
            log.info("ledger.migrated", database=_safe(engine), before=before, after=after)
        return after
    finally:
        if owned:
            engine.dispose()


def current(engine_or_url: Engine | str) -> str | None:
    """The revision the ledger is at, or None for a database that was never migrated."""
    engine, owned = _engine(engine_or_url)
    try:
        return revision_of(engine)
    finally:
        if owned:
            engine.dispose()


def new_revision(message: str, url: str = "sqlite:///.handoff/revision.db") -> Path:
    """Write a new revision (`<next number>_<slug>.py`) with the changes from the ledger at head to `tables.py`.

    `url` is a scratch database that is first upgraded to head; the default is a SQLite file under .handoff/.
    """
    upgrade(url)
    number = f"{int(head()) + 1:04d}"
    config = alembic_config(url)
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    script = command.revision(config, message=message, autogenerate=True, rev_id=number)
    assert script is not None and not isinstance(script, list)
    path = Path(script.path)
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff:  # the house style, so the new file passes `ruff check` as written
        subprocess.run([ruff, "check", "--fix", "--quiet", str(path)], check=False)
        subprocess.run([ruff, "format", "--quiet", str(path)], check=False)
    return path


def _check_known(connection: Connection, revision: str) -> None:
    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        raise MigrationError(
            f"The ledger at {_safe(connection.engine)} is at revision {revision}, which this version of Handoff does "
            f"not know (its newest is {head()}): a newer Handoff migrated it. Run that version, or a database "
            "of this version's own."
        ) from None


def _adopt_unversioned(connection: Connection) -> None:
    """Stamp a ledger made by `create_all` before migrations existed, so the revisions do not create it twice."""
    present = set(inspect(connection).get_table_names())
    if "runs" not in present:
        return
    missing = UNVERSIONED_TABLES - present
    if missing:
        raise MigrationError(
            f"The ledger at {_safe(connection.engine)} has tables but no alembic_version, and lacks "
            f"{sorted(missing)}: it is not a ledger Handoff created. Point HANDOFF_DATABASE_URL at an empty "
            "database, or stamp this one by hand (alembic stamp) once its schema matches a revision."
        )
    script = ScriptDirectory.from_config(alembic_config())
    MigrationContext.configure(connection).stamp(script, UNVERSIONED_REVISION)
    log.info("ledger.adopted", database=_safe(connection.engine), revision=UNVERSIONED_REVISION)


def _engine(engine_or_url: Engine | str) -> tuple[Engine, bool]:
    if isinstance(engine_or_url, Engine):
        return engine_or_url, False
    return make_engine(engine_or_url), True


def _safe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
