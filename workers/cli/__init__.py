"""The `handoff` command line. `main` is the console-script entry point."""

from __future__ import annotations

import os
import sys

from handoff.workers.cli import (  # noqa: F401  (each registers its commands)
    api,
    backtest,
    budget,
    cases,
    check,
    claims,
    diagnose,
    drift,
    lock,
    login,
    migrate,
    new,
    operators,
    purge,
    replay_check,
    runtime,
    schedules,
    sources,
    suggest,
)
from handoff.workers.cli.app import app
from handoff.workers.tracing import stop_tracing


def main() -> None:
    """Run the CLI, then leave with `os._exit`.

    A process that used the Temporal SDK can abort at interpreter exit (`PyGILState_Release`, exit 134) after a
    clean shutdown; every command has finished and flushed by the time we get here, so skipping the interpreter's
    own teardown loses nothing and keeps exit codes honest.
    """
    code = 0
    try:
        app()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    stop_tracing()  # os._exit skips the exporter's own exit handler: send the command's spans now (none when off)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
