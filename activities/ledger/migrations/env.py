"""Alembic's environment for the ledger, configured in code (no alembic.ini): see `activities.ledger.migrate`.

`migrate.upgrade` hands over an open connection in `config.attributes["connection"]`, inside a transaction it owns
(it holds the migration lock and commits at the end). Without one, the URL in the `sqlalchemy.url` option is used.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from handoff.activities.ledger import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from handoff.activities.ledger.database import make_engine

config = context.config
target_metadata = SQLModel.metadata


def _render_item(kind: str, item: Any, autogen: AutogenContext) -> str | Literal[False]:
    # sqlmodel's str columns are an `AutoString` (a plain VARCHAR): write `sa.String()` so revisions need only
    # SQLAlchemy and keep working whatever sqlmodel becomes.
    if kind == "type" and isinstance(item, AutoString):
        return "sa.String()"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters a table by copying it: autogenerate writes `batch_alter_table` so revisions run on both.
        render_as_batch=True,
        render_item=_render_item,
        compare_type=True,
    )


def run_offline() -> None:
    """Print the SQL (`--sql`) instead of running it."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        render_as_batch=True,
        render_item=_render_item,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the revisions on the connection `migrate` passed in, or on a new one to `sqlalchemy.url`."""
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no ledger to migrate: pass a connection or set the sqlalchemy.url option")
    engine = make_engine(url)
    try:
        with engine.connect() as own:
            _configure(own)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
