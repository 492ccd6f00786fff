"""The `handoff` Typer application. Each sub-command lives in its own module and registers itself here."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="handoff",
    help="Handoff: business handoffs as written contracts, run as durable Temporal workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
