"""The `handoff` Typer application. Each sub-command lives in its own module and registers itself here."""

from __future__ import annotations

from typing import Annotated

import typer

from handoff.workers.app import APP_VARIABLE, Handoffs, load_app
from handoff.workers.settings import load_settings

app = typer.Typer(
    name="handoff",
    help="Handoff: business handoffs as written contracts, run as durable Temporal workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def handoff() -> None:
    """A group of commands even when one is registered: `main` imports only the module of the command it runs, and
    Typer runs an app of one command as that command, which would take its own name for an extra argument."""


AppOption = Annotated[
    str | None,
    typer.Option(
        "--app",
        metavar="MODULE:ATTR",
        help=f"Your Handoffs object, imported from the current directory, e.g. myhandoffs:app [default: {APP_VARIABLE}].",
    ),
]
"""The user's app, on every command that needs its contracts: `--app module:attr`, or HANDOFF_APP."""


def load_user_app(spec: str | None) -> Handoffs:
    """The app `--app` (else HANDOFF_APP) names; a usage error (exit 2) that says what was wrong otherwise."""
    spec = spec or load_settings().app
    if not spec:
        raise typer.BadParameter(
            f"no app given: pass --app MODULE:ATTR (or set {APP_VARIABLE}), e.g. --app examples.restaurant:app",
            param_hint="--app",
        )
    try:
        return load_app(spec)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--app") from None
