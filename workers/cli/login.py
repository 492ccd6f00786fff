"""`handoff login`: keep an operator's API token for the command line, so that `handoff decide` acts as them.

The CLI decides as the operator whose token it holds, found in the ledger the way the API finds a bearer token:
`HANDOFF_TOKEN` when it is set (scripts, CI), else the token `handoff login` kept in the user's config directory
(`~/.config/handoff/token` on Linux, under `XDG_CONFIG_HOME` when that is set), a file only its owner may read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from handoff.activities.ledger.operators import operator_for_token
from handoff.workers.cli.app import app
from handoff.workers.settings import load_settings
from handoff.workers.worker import open_ledger

TOKEN_VARIABLE = "HANDOFF_TOKEN"
TOKEN_FILE = "token"

console = Console()
errors = Console(stderr=True, soft_wrap=True)


def token_path() -> Path:
    """Where `handoff login` keeps the token: the user's config directory for `handoff`."""
    return Path(typer.get_app_dir("handoff")) / TOKEN_FILE


def operator_token() -> tuple[str, str] | None:
    """The operator token the CLI acts with and where it came from (for messages), or None when it has none."""
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if token:
        return token, TOKEN_VARIABLE
    path = token_path()
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        return None
    return (token, str(path)) if token else None


def no_token_message() -> str:
    return (
        f"No operator token: run `handoff login` with the token `handoff operators add` printed for you, or set "
        f"{TOKEN_VARIABLE}."
    )


@app.command()
def login(
    token: Annotated[
        str,
        typer.Option(
            "--token",
            prompt="Operator token",
            hide_input=True,
            help="The API token `handoff operators add` printed; asked for (unseen) when not given.",
        ),
    ],
) -> None:
    """Log in as an operator: check the token against the ledger and keep it for `handoff decide`."""
    from handoff.workers.cli.cases import quiet_logging  # cases imports this module: it registers `login`

    settings = load_settings()
    quiet_logging(settings)
    token = token.strip()
    ledger = open_ledger(settings)
    try:
        operator = operator_for_token(ledger, token)
    finally:
        ledger.dispose()
    if operator is None:
        errors.print(
            "That token is no operator's in this ledger: check it, or ask for a new one (`handoff operators add`)."
        )
        raise typer.Exit(1)
    path = token_path()
    _write_private(path, token)
    groups = ", ".join(operator.groups) or "no group"
    console.print(f"Logged in as {operator.name} ({groups}). The token is kept in {path}, readable by you only.")


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable and writable by its owner only, never wider even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")
    os.chmod(draft, 0o600)  # in case a draft of that name was left behind with wider permissions
    os.replace(draft, path)
