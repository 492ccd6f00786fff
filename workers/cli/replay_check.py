"""`handoff replay-check`: replay recent runs on the current code before deploying its workers, in CI.

It fetches each handoff's recent histories from Temporal (or reads saved ones from `--histories DIR`), replays them
with the app's plugin as a new worker would, and prints per handoff how many replayed and which failed, with the
first line of why. Exit codes: 0 every history replayed, 1 one failed (or Temporal could not be reached), 2 bad
input (an unknown handoff, a folder without histories, a malformed `--since`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from temporalio.service import RPCError

from handoff.schemas.replay import ReplayCheck
from handoff.workers.app import Handoffs
from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.cli.cases import quiet_logging
from handoff.workers.client import connect
from handoff.workers.replay_check import (
    DEFAULT_LIMIT,
    ReplayCheckError,
    as_async,
    folder_histories,
    handoffs_to_check,
    parse_age,
    replay,
    server_histories,
)
from handoff.workers.settings import Settings, load_settings


@app.command(name="replay-check")
def replay_check(
    handoff: Annotated[str | None, typer.Option("--handoff", help="Only this handoff's runs.")] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="At most this many runs per handoff, open ones first, then newest.")
    ] = DEFAULT_LIMIT,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="AGE", help="Only closed runs that closed within AGE (7d, 12h, 30m); open ones always."
        ),
    ] = None,
    task_queue: Annotated[str | None, typer.Option("--task-queue", help="Only runs on this task queue.")] = None,
    histories: Annotated[
        Path | None,
        typer.Option(
            "--histories",
            metavar="DIR",
            help="Replay the saved history files (*.json) in DIR instead of asking Temporal; "
            "--limit, --since and --task-queue do not apply.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    app_spec: AppOption = None,
) -> None:
    """Replay recent runs of each handoff on the current code: exit 1 if any would break. Run it before deploying
    workers."""
    user_app = load_user_app(app_spec)
    settings = load_settings()
    quiet_logging(settings)
    with _usage_error("--handoff"):
        handoffs = handoffs_to_check(user_app, handoff)
    with _usage_error("--since"):
        age = parse_age(since) if since is not None else None
    if histories is not None:
        with _usage_error("--histories"):
            saved = folder_histories(histories, handoffs if handoff else None)
        check = asyncio.run(replay(user_app, as_async(saved), source=f"folder {histories}", handoffs=handoffs))
    else:
        check = asyncio.run(_from_temporal(settings, user_app, handoffs, limit=limit, since=age, task_queue=task_queue))
    if as_json:
        typer.echo(check.model_dump_json(indent=2))
    else:
        render(check)
    raise typer.Exit(1 if check.failed else 0)


@contextmanager
def _usage_error(option: str) -> Iterator[None]:
    """A `ReplayCheckError` as a usage error (exit 2) that names the option it is about."""
    try:
        yield
    except ReplayCheckError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


async def _from_temporal(
    settings: Settings,
    user_app: Handoffs,
    handoffs: Sequence[str],
    *,
    limit: int,
    since: timedelta | None,
    task_queue: str | None,
) -> ReplayCheck:
    source = f"Temporal at {settings.temporal_address}, namespace {settings.namespace}"
    try:
        client = await connect(settings)
    except RuntimeError as error:  # the SDK's connection failure
        typer.echo(f"Cannot reach Temporal at {settings.temporal_address}: {error}", err=True)
        raise typer.Exit(1) from None
    fetched = server_histories(client, handoffs, limit=limit, since=since, task_queue=task_queue)
    try:
        return await replay(user_app, fetched, source=source, handoffs=handoffs)
    except RPCError as error:
        typer.echo(f"Temporal at {settings.temporal_address} refused to list or send the histories: {error}", err=True)
        raise typer.Exit(1) from None


def render(check: ReplayCheck) -> None:
    """Per handoff: replayed and failed, then each failure's workflow id and first error line; a closing verdict."""
    typer.echo(f"Replayed {check.replayed} histor{'y' if check.replayed == 1 else 'ies'} from {check.source}.")
    width = max((len(line.handoff) for line in check.handoffs), default=0)
    for line in check.handoffs:
        typer.echo(f"  {line.handoff:<{width}}  replayed {line.replayed}, failed {line.failed}")
        for failure in line.failures:
            typer.echo(f"    {failure.workflow_id}: {failure.error_type}: {failure.error}")
    if check.failed:
        typer.echo(
            f"{check.failed} of {check.replayed} failed to replay: new workers on this code would break those runs. "
            "Keep every contract version with runs in flight in the app or its lock file (`handoff lock`), "
            "or let those runs finish before deploying."
        )
    elif check.replayed == 0:
        typer.echo("Nothing to replay: no run matched. Check --app, the namespace and --task-queue.")
    else:
        typer.echo("Every history replayed: the current code finishes these runs as they started.")
