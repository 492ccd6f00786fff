"""`handoff sources add|rotate|list`: the systems that send events, the events each may send, and their secrets.

A secret is printed once, when the source is added or rotated. The ledger keeps it as given (checking an HMAC needs
the key itself), so protect the ledger like any secret store. Rotating adds a new secret and keeps the previous one
active, so the source can switch without a moment when its events are refused; a second rotation drops the oldest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table

from handoff.activities.ledger.sources import SourceProblem, add_source, list_sources, rotate_secret, source_named
from handoff.schemas.sources import Source, SourceSecret
from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.cli.cases import quiet_logging
from handoff.workers.settings import load_settings
from handoff.workers.worker import opened_ledger

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # messages keep their lines; the terminal wraps them

sources_app = typer.Typer(
    name="sources",
    help="Systems that send events, signed with a secret (`Handoff-Signature`), and the events each may send.",
    no_args_is_help=True,
)
app.add_typer(sources_app)

AsJson = Annotated[bool, typer.Option("--json", help="Print the source and its new secret as JSON.")]


@sources_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The source's name, one word: what it sends as `Handoff-Source`.")],
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--event", "-e", help="An event the source may send. Repeatable; one at least.", show_default=False
        ),
    ] = None,
    as_json: AsJson = False,
    app_spec: AppOption = None,
) -> None:
    """Add an event source and print its secret, once."""
    catalog = load_user_app(app_spec).catalog
    known_events = [contract.trigger.event for contract in catalog.contracts if contract.trigger is not None]
    settings = load_settings()
    quiet_logging(settings)
    try:
        with opened_ledger(settings) as ledger:
            secret = add_source(ledger, name, events or [], known_events=known_events)
            source = source_named(ledger, name.strip())
    except SourceProblem as problem:
        errors.print(f"{problem} Nothing was added.")
        raise typer.Exit(2) from None
    _print_secret(
        SourceSecret(source=source, secret=secret), f"{source.name} added, sending {', '.join(source.events)}.", as_json
    )


@sources_app.command("rotate")
def rotate(
    name: Annotated[str, typer.Argument(help="The source whose secret to replace.")],
    as_json: AsJson = False,
) -> None:
    """Give a source a new secret and print it, once; the previous secret stays active until the next rotation."""
    settings = load_settings()
    quiet_logging(settings)
    try:
        with opened_ledger(settings) as ledger:
            secret = rotate_secret(ledger, name)
            source = source_named(ledger, name)
    except SourceProblem as problem:
        errors.print(f"{problem} Nothing was rotated.")
        raise typer.Exit(2) from None
    message = f"{source.name} has a new secret; the previous one stays valid until the next rotation."
    _print_secret(SourceSecret(source=source, secret=secret), message, as_json)


@sources_app.command("list")
def list_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the sources and the events each may send (secrets are never shown again)."""
    settings = load_settings()
    quiet_logging(settings)
    with opened_ledger(settings) as ledger:
        found = list_sources(ledger)
    if as_json:
        console.print_json(TypeAdapter(list[Source]).dump_json(found).decode())
        return
    table = Table(title=f"{len(found)} source(s)", title_justify="left")
    for column in ("source", "events", "secrets", "added", "rotated"):
        table.add_column(column)
    now = datetime.now(UTC)
    for source in found:
        added = f"{source.created_at:%Y-%m-%d} ({(now - source.created_at).days}d ago)"
        rotated = f"{source.rotated_at:%Y-%m-%d}" if source.rotated_at else "-"
        table.add_row(source.name, ", ".join(source.events), str(source.active_secrets), added, rotated)
    console.print(table)


def _print_secret(answer: SourceSecret, message: str, as_json: bool) -> None:
    if as_json:
        console.print_json(answer.model_dump_json())
        return
    console.print(message)
    console.print("Secret (shown this once; sign `<t>.<raw body>` with HMAC-SHA256 and it, so keep it now):")
    console.print(answer.secret, soft_wrap=True, highlight=False)
