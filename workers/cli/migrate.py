"""`handoff migrate`: bring the ledger's schema up to date (or to a revision), or say which revision it is at."""

from __future__ import annotations

from typing import Annotated

import typer
from alembic.util import CommandError
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from handoff.activities.ledger.migrate import MigrationError, current, head, upgrade
from handoff.workers.cli.app import app
from handoff.workers.logs import configure_logging
from handoff.workers.settings import load_settings

console = Console(soft_wrap=True, highlight=False)
errors = Console(stderr=True, soft_wrap=True, highlight=False)


@app.command()
def migrate(
    revision: Annotated[
        str, typer.Option("--revision", "-r", help="The revision to upgrade to; default: the newest.")
    ] = "head",
    show_current: Annotated[
        bool, typer.Option("--current", help="Print the ledger's revision and the newest one; change nothing.")
    ] = False,
) -> None:
    """Upgrade the ledger (HANDOFF_DATABASE_URL, default SQLite under HANDOFF_HOME) to the newest schema."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    url = settings.ledger_url
    where = make_url(url).render_as_string(hide_password=True)
    try:
        if show_current:
            at = current(url)
            newest = head()
            note = "up to date" if at == newest else f"newest is {newest}: run `handoff migrate`"
            console.print(f"{at or 'none (never migrated)'}  ({note})")
            return
        at = upgrade(url, revision)
    except (CommandError, MigrationError) as error:
        errors.print(f"Cannot migrate the ledger at {where}: {error}")
        raise typer.Exit(2) from None
    except SQLAlchemyError as error:
        errors.print(
            f"Cannot reach the ledger at {where}: {error.__class__.__name__}: {error.args[0] if error.args else error}"
        )
        raise typer.Exit(1) from None
    console.print(f"The ledger at {where} is at revision {at}.")
