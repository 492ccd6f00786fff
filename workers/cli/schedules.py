"""`handoff schedules [sync]`: the app's scheduled handoffs as Temporal Schedules.

`handoff schedules` lists each contract's schedule beside what Temporal has (in sync, missing, out of date, paused)
and the next run; `handoff schedules sync` creates, updates and deletes Temporal's `handoff/<handoff>` schedules on
the configured task queue until they match the app, and says what it did. A second sync changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from pydantic import TypeAdapter
from rich.console import Console
from rich.table import Table

from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.cli.cases import quiet_logging
from handoff.workers.client import connect
from handoff.workers.schedules import ScheduleRow, schedule_rows, sync_schedules
from handoff.workers.settings import load_settings

console = Console()
errors = Console(stderr=True, soft_wrap=True)

schedules_app = typer.Typer(
    name="schedules",
    help="Handoffs started on a clock: list the app's schedules, or `sync` them to Temporal.",
    invoke_without_command=True,
)
app.add_typer(schedules_app)


@schedules_app.callback()
def list_command(
    context: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    app_spec: AppOption = None,
) -> None:
    """List the app's schedules: id, clock, status in Temporal, next run."""
    if context.invoked_subcommand is not None:
        return
    user_app = load_user_app(app_spec)
    settings = load_settings()
    quiet_logging(settings)

    async def read() -> list[ScheduleRow]:
        client = await connect(settings)
        return await schedule_rows(client, user_app.catalog, task_queue=settings.task_queue)

    rows = asyncio.run(read())
    if as_json:
        console.print_json(TypeAdapter(list[ScheduleRow]).dump_json(rows).decode())
        return
    table = Table(title=f"{len(rows)} schedule(s) on {settings.task_queue}", title_justify="left")
    for column in ("id", "clock", "status", "next run (UTC)"):
        table.add_column(column)
    for row in rows:
        next_run = f"{row.next_run:%Y-%m-%d %H:%M:%S}" if row.next_run else "-"
        table.add_row(row.id, row.spec, row.status, next_run)
    console.print(table)


@schedules_app.command("sync")
def sync(app_spec: AppOption = None) -> None:
    """Create, update and delete Temporal Schedules until they match the app's contracts; idempotent."""
    user_app = load_user_app(app_spec)
    settings = load_settings()
    quiet_logging(settings)
    readiness = user_app.readiness()
    if not readiness.ready:
        errors.print("The app is not ready, so no schedule was changed (see `handoff check`):")
        for finding in readiness.findings:
            errors.print(f"  {finding.contract}: [{finding.kind.value}] {finding.message}", markup=False)
        raise typer.Exit(1)

    async def run() -> None:
        client = await connect(settings)
        report = await sync_schedules(client, user_app.catalog, task_queue=settings.task_queue)
        for verb, ids in (("created", report.created), ("updated", report.updated), ("deleted", report.deleted)):
            for sid in ids:
                console.print(f"{verb} {sid}", markup=False)
        if not report.changed:
            console.print(f"Nothing changed: {len(report.unchanged)} schedule(s) already match the app.")

    asyncio.run(run())
