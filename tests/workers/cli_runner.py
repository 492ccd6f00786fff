"""Running `handoff` commands in-process with Typer's CliRunner, as a user would type them, against a kit.

A command runs in a thread: it starts its own event loop (`asyncio.run`), while the kit's worker keeps running in
the test's loop. Logging is set up for the command (to stderr, so `--json` on stdout stays parseable) and put back
afterwards, because `configure_logging` is process-wide.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from click.testing import Result
from typer.testing import CliRunner

from handoff.workers.cli import commands
from handoff.workers.cli.login import TOKEN_VARIABLE
from handoff.workers.logs import configure_logging
from handoff.workers.testkit import HandoffKit

app = commands()


def cli_env(kit: HandoffKit, temporal_address: str) -> dict[str, str]:
    """The environment that points `handoff` at the kit's server, task queue and ledger, and at the restaurant app;
    with the kit's decision key, and a config directory of its own (where `handoff login` keeps a token)."""
    assert kit.settings.decision_key is not None
    return {
        "HANDOFF_APP": "examples.restaurant:app",
        "HANDOFF_TEMPORAL_ADDRESS": temporal_address,
        "HANDOFF_HOME": str(kit.settings.home),
        "HANDOFF_TASK_QUEUE": kit.settings.task_queue,
        "HANDOFF_DATABASE_URL": kit.settings.ledger_url,
        "HANDOFF_SLA_SCALE": str(kit.settings.sla_scale),
        "HANDOFF_LOG_LEVEL": "WARNING",
        "HANDOFF_DECISION_KEY": kit.settings.decision_key.get_secret_value(),
        "XDG_CONFIG_HOME": str(kit.settings.home / "config"),
        "COLUMNS": "200",  # tables wide enough that ids are never wrapped
    }


async def handoff(env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    """`handoff <args>` with `env` (and no HANDOFF_TOKEN of the caller's), in a thread, reading `stdin`; the result
    has exit_code, stdout and stderr."""
    variables: dict[str, str | None] = {TOKEN_VARIABLE: None, **env}
    with restored_logging():
        return await asyncio.to_thread(CliRunner().invoke, app, list(args), input=stdin, env=variables)


@contextmanager
def restored_logging() -> Iterator[None]:
    """Route logs to stderr (never stdout) while a command runs; afterwards, logging is as it was."""
    root, alembic = logging.getLogger(), logging.getLogger("alembic")
    handlers, level, alembic_level = root.handlers[:], root.level, alembic.level
    config = structlog.get_config()
    configure_logging("WARNING")
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        alembic.setLevel(alembic_level)
        structlog.configure(**config)
