"""The `handoff` command line. `main` is the console-script entry point.

Each command lives in its own module, which registers it on the Typer app when imported (`app.py`). `main` imports
only the module of the command it runs: imports are most of the time `handoff worker` takes to start polling, and a
worker has no use for the API's, the migrations' or the backtest's modules. Help, and a name that is no command,
import them all, so the listing is whole and a typo gets the usual "No such command".
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

import typer

from handoff.workers.cli.app import app
from handoff.workers.tracing import stop_tracing

COMMAND_MODULES: dict[str, str] = {
    "api": "api",
    "login": "login",
    "cases": "cases",
    "case": "cases",
    "decide": "cases",
    "runs": "cases",
    "status": "cases",
    "report": "cases",
    "backtest": "backtest",
    "budget": "budget",
    "check": "check",
    "claim": "claims",
    "release": "claims",
    "reassign": "claims",
    "comment": "claims",
    "decide-many": "claims",
    "diagnose": "diagnose",
    "drift": "drift",
    "lock": "lock",
    "migrate": "migrate",
    "new": "new",
    "operators": "operators",
    "purge": "purge",
    "replay-check": "replay_check",
    "schedules": "schedules",
    "server": "runtime",
    "worker": "runtime",
    "up": "runtime",
    "trigger": "runtime",
    "sources": "sources",
    "suggest": "suggest",
}
"""The module (in this package) that registers each top-level command or command group. A test keeps it whole."""


def commands(name: str | None = None) -> typer.Typer:
    """The app with command `name` registered; with every command when `name` is None or names no command."""
    modules = [COMMAND_MODULES[name]] if name in COMMAND_MODULES else dict.fromkeys(COMMAND_MODULES.values())
    for module in modules:
        importlib.import_module(f"{__name__}.{module}")
    return app


def command_named(args: Sequence[str]) -> str | None:
    """The command a command line runs: its first word that is not an option (the app has no options of its own
    that take a value)."""
    return next((arg for arg in args if not arg.startswith("-")), None)


def main() -> None:
    """Run the CLI, then leave with `os._exit`.

    A process that used the Temporal SDK can abort at interpreter exit (`PyGILState_Release`, exit 134) after a
    clean shutdown; every command has finished and flushed by the time we get here, so skipping the interpreter's
    own teardown loses nothing and keeps exit codes honest.
    """
    code = 0
    try:
        commands(command_named(sys.argv[1:]))()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    stop_tracing()  # os._exit skips the exporter's own exit handler: send the command's spans now (none when off)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
