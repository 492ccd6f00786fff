"""`handoff budget [resume | reject]`: handoffs held by their exception budget, and the operator's decision on them.

`handoff budget` lists the held handoffs with the figures that tripped each hold and the runs waiting on it; with an
app (`--app`, else HANDOFF_APP) it also shows every budgeted handoff's figures now. `resume HANDOFF --reason` lets the
held runs deliver, `reject HANDOFF --reason` ends them rejected: as the operator whose token the CLI holds
(`HANDOFF_TOKEN`, else `handoff login`), who must be of the handoff's owner group or an administrator. The ledger
keeps who, when and why; then each held run is told to ask the ledger again.

Exit codes: 0 done; 1 refused (nothing held, not allowed) or Temporal unreachable; 2 bad input or no operator token.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer
from pydantic import TypeAdapter, ValidationError
from rich.table import Table

from handoff.activities.budget import release_held_runs
from handoff.activities.ledger.budget import HoldRefused, active_holds, budget_figures, decide_hold
from handoff.schemas.budget import Hold, HoldDecided, HoldDecisionBody, HoldState
from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.cli.cases import AsJson, cli_settings, console, errors, print_json, temporal_client, token_operator
from handoff.workers.edge import value_problems
from handoff.workers.settings import Settings
from handoff.workers.worker import opened_ledger

budget_app = typer.Typer(
    name="budget",
    help="Handoffs held by their exception budget: list them, `resume` them or `reject` their held runs.",
    invoke_without_command=True,
)
app.add_typer(budget_app)

HandoffArgument = Annotated[str, typer.Argument(help="The handoff held, e.g. reservation-to-pos.")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why: kept with the hold, in the audit trail.")]


@budget_app.callback()
def list_command(context: typer.Context, as_json: AsJson = False, app_spec: AppOption = None) -> None:
    """List the held handoffs: when, the figures that tripped the hold, the runs waiting."""
    if context.invoked_subcommand is not None:
        return
    settings = cli_settings()
    user_app = load_user_app(app_spec) if (app_spec or settings.app) else None
    with opened_ledger(settings) as ledger:
        held = active_holds(ledger)
        now = datetime.now(UTC)
        budgeted = [
            (contract, budget_figures(ledger, contract.name, contract.exceptions.budget, at=now))
            for contract in (user_app.catalog.contracts if user_app else ())
            if contract.exceptions is not None and contract.exceptions.budget is not None
        ]
    if as_json:
        print_json(TypeAdapter(list[Hold]), held)
        return
    table = Table(title=f"{len(held)} handoff(s) held", title_justify="left")
    for column in ("handoff", "held at (UTC)", "runs", "with a case", "rate", "window", "waiting", "owner"):
        table.add_column(column)
    for hold in held:
        table.add_row(
            hold.handoff,
            f"{hold.held_at:%Y-%m-%d %H:%M:%S}",
            str(hold.runs),
            str(hold.runs_with_case),
            f"{hold.case_rate:.0%}",
            f"{hold.window_seconds:g}s",
            str(hold.held_runs),
            hold.owner_group or "-",
        )
    console.print(table)
    held_names = {hold.handoff for hold in held}
    for contract, figures in budgeted:
        assert contract.exceptions is not None and contract.exceptions.budget is not None
        budget = contract.exceptions.budget
        state = "HELD" if contract.name in held_names else "ok"
        console.print(
            f"{contract.name}: {state}; {figures.runs_with_case} of {figures.runs} runs opened a case "
            f"({figures.rate:.0%}; tolerance {budget.max_case_rate:.0%} over {budget.window}, from "
            f"{budget.min_runs} runs)"
        )


@budget_app.command()
def resume(handoff: HandoffArgument, reason: ReasonOption, as_json: AsJson = False) -> None:
    """Resume a held handoff: its held runs deliver, and its budget counts afresh."""
    _decide(handoff, HoldState.RESUMED, reason, as_json)


@budget_app.command()
def reject(handoff: HandoffArgument, reason: ReasonOption, as_json: AsJson = False) -> None:
    """Reject the held runs of a handoff: they end rejected with your reason; its budget counts afresh."""
    _decide(handoff, HoldState.REJECTED, reason, as_json)


def _decide(handoff: str, state: HoldState, reason: str, as_json: bool) -> None:
    try:
        body = HoldDecisionBody(reason=reason)
    except ValidationError:
        errors.print("--reason: say why, in 1 to 2000 characters.")
        raise typer.Exit(2) from None
    problems = value_problems({"reason": body.reason})
    if problems:
        errors.print("; ".join(f"--reason: {problem.message}" for problem in problems))
        raise typer.Exit(2)
    settings = cli_settings()
    with opened_ledger(settings) as ledger:
        operator = token_operator(ledger)
        try:
            hold = decide_hold(ledger, handoff, state, operator, body.reason, at=datetime.now(UTC))
        except HoldRefused as refused:
            errors.print(f"Refused ({refused.kind}): {refused.message}")
            raise typer.Exit(1) from None
    signalled = asyncio.run(_release(settings, handoff))
    decided = HoldDecided(hold=hold, signalled=signalled)
    if as_json:
        print_json(TypeAdapter(HoldDecided), decided)
        return
    verb = "resumed: its held runs deliver" if state is HoldState.RESUMED else "rejected: its held runs end rejected"
    console.print(f"{handoff} {verb} ({len(signalled)} run(s) told). Hold {hold.id} decided by {hold.decided_by}.")


async def _release(settings: Settings, handoff: str) -> list[str]:
    """Tell the held runs; the decision is in the ledger already, so a run not told now asks again on its timer."""
    with opened_ledger(settings) as ledger:
        return await release_held_runs(await temporal_client(settings), ledger, handoff)
