"""`handoff drift check`: compare the delivered copies with their source of truth now, instead of at the next firing.

It starts the same drift check workflow the contract's drift schedule starts, on the configured task queue (a worker
for the app must be running there), waits for it, and prints what it compared, found and opened: each drifted run
with its systems and fields (the source's value beside the copy's), and the drift runs holding their cases.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Annotated

import typer
from pydantic import TypeAdapter
from rich.console import Console
from temporalio.client import WorkflowFailureError

from handoff.schemas.contract import HandoffContract
from handoff.schemas.drift import DriftCheckInput, DriftCheckResult
from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.cli.cases import quiet_logging
from handoff.workers.client import connect
from handoff.workers.schedules import drift_schedule_id
from handoff.workers.settings import load_settings
from handoff.workflows.drift import DriftCheckWorkflow

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

drift_app = typer.Typer(name="drift", help="Drift: delivered copies that no longer match their source of truth.")
app.add_typer(drift_app)


@drift_app.command("check")
def check(
    handoff: Annotated[
        str | None, typer.Option("--handoff", metavar="NAME", help="Only this handoff [default: every drift check].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    app_spec: AppOption = None,
) -> None:
    """Run the drift checks now and print what each found (a worker for the app must be running)."""
    user_app = load_user_app(app_spec)
    settings = load_settings()
    quiet_logging(settings)
    contracts = _drift_checked(list(user_app.catalog.contracts), handoff)

    async def run() -> list[DriftCheckResult]:
        client = await connect(settings)
        results = []
        for contract in contracts:
            results.append(
                await client.execute_workflow(
                    DriftCheckWorkflow.run,
                    DriftCheckInput(handoff=contract.name),
                    id=f"{drift_schedule_id(contract.name)}/now-{uuid.uuid4().hex[:8]}",
                    task_queue=settings.task_queue,
                    static_summary=f"{contract.name}: drift check, started by hand",
                )
            )
        return results

    try:
        results = asyncio.run(run())
    except WorkflowFailureError as failure:
        errors.print(f"The drift check failed: {failure.cause or failure}", markup=False)
        raise typer.Exit(1) from None
    if as_json:
        console.print_json(TypeAdapter(list[DriftCheckResult]).dump_json(results).decode())
        return
    for result in results:
        _print(result)


def _drift_checked(contracts: list[HandoffContract], handoff: str | None) -> list[HandoffContract]:
    """The contracts to check: `handoff`'s (which must declare a drift check), else every one that declares one."""
    checked = [c for c in contracts if c.sync is not None and c.sync.drift_check is not None]
    if handoff is None:
        if not checked:
            errors.print("No handoff of the app declares a drift check: Sync(drift_check=DriftCheck(every=...)).")
            raise typer.Exit(1)
        return checked
    known = {contract.name for contract in contracts}
    if handoff not in known:
        raise typer.BadParameter(
            f"the app has no handoff {handoff!r} (known: {', '.join(sorted(known))})", param_hint="--handoff"
        )
    chosen = [contract for contract in checked if contract.name == handoff]
    if not chosen:
        errors.print(f"{handoff} declares no drift check: add Sync(drift_check=DriftCheck(every=...)) to its contract.")
        raise typer.Exit(1)
    return chosen


def _print(result: DriftCheckResult) -> None:
    console.print(
        f"{result.handoff}: {result.checked} delivered run(s) compared, {len(result.findings)} drifted",
        markup=False,
    )
    for finding in result.findings:
        if finding.source_gone is not None:
            console.print(f"  {finding.workflow_id}: {finding.source_gone} no longer has the record", markup=False)
        for drift in finding.differences:
            where = f"{drift.system}.{drift.target_field or drift.field}" if drift.field else drift.system
            what = f"copy {drift.copy_value!r}, source {drift.source_value!r}" if drift.field else "the copy is gone"
            console.print(f"  {finding.workflow_id}: {where} ({drift.field or 'record'}): {what}", markup=False)
    for opened in result.opened:
        console.print(f"  case held by drift run {opened}", markup=False)
    for seen in result.already_decided:
        console.print(f"  {seen}: the same drift was decided before; not raised again", markup=False)
    for problem in result.problems:
        console.print(f"  not compared: {problem}", markup=False)
