"""`handoff suggest`: rules operators keep approving away, as the contract change that would stop it, backtested.

Reads the cases opened and the runs received within --since. For each rule the diagnosis signs as overridden (the
`HANDOFF_DIAGNOSE_*` thresholds), it prints the evidence, the rule as the next version would have it where the
approved values say it (`workers/suggest.py` says how), and what that version would have done to the runs received:
fewer cases, new cases. The ledger is only read, and look-ups count as they did in the recorded runs. Exit codes: 0
done, 1 the ledger could not be read, 2 bad input.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from handoff.activities.ledger.backtest import recorded_runs
from handoff.activities.ledger.diagnosis import read_cases
from handoff.schemas.suggestions import HandoffSuggestions, Measured, Suggestion, SuggestionReport
from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.cli.backtest import contracts_to_test, window_start
from handoff.workers.cli.cases import quiet_logging
from handoff.workers.cli.diagnose import thresholds
from handoff.workers.settings import load_settings
from handoff.workers.suggest import suggest
from handoff.workers.worker import opened_ledger

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

SHOWN = 5
"""Runs listed per change in the text output; `--json` lists them all."""


@app.command(name="suggest")
def suggest_command(
    handoff: Annotated[str | None, typer.Option("--handoff", help="Only this handoff [default: every one].")] = None,
    since: Annotated[
        str, typer.Option("--since", metavar="SPAN", help="Cases opened and runs received within this span: 30d.")
    ] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Print the suggestions as JSON.")] = False,
    app_spec: AppOption = None,
) -> None:
    """Suggest rule changes from the rules operators override, each with its evidence and its backtest.

    A Max is raised to the largest approved value, a Min lowered to the smallest, a MaxLength raised to the longest,
    a OneOf widened by the approved values; other rules get their evidence only.
    """
    now = datetime.now(UTC)
    start = window_start(since, now)
    settings = load_settings()
    quiet_logging(settings)  # before the app is imported: an app may bind its loggers as it is built
    contracts = contracts_to_test(load_user_app(app_spec), handoff)
    names = [contract.name for contract in contracts]
    try:
        with opened_ledger(settings) as ledger:
            cases = read_cases(ledger, handoffs=names, since=start)
            runs = recorded_runs(ledger, handoffs=names, since=start)
    except SQLAlchemyError as error:
        errors.print(f"Cannot read the ledger ({type(error).__name__}): check HANDOFF_DATABASE_URL.", markup=False)
        raise typer.Exit(1) from None
    result = asyncio.run(suggest(contracts, cases, runs, since=start, now=now, thresholds=thresholds(settings)))
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        render(result, since)


# -- the text output --------------------------------------------------------------------------------------------------


def render(result: SuggestionReport, span: str) -> None:
    """The window, then each handoff's suggestions."""
    share = f"{100 * result.thresholds.override_share:.0f}%"
    _say(
        f"Suggestions: rules approved as is in {share} or more of their decided cases (from "
        f"{result.thresholds.min_cases}), since {result.since:%Y-%m-%d %H:%M} UTC ({span.strip()})."
    )
    for handoff in result.handoffs:
        _say("")
        _render_handoff(handoff)


def _render_handoff(handoff: HandoffSuggestions) -> None:
    console.print(
        Text.assemble(
            (handoff.handoff, "bold"), f" v{handoff.version}: {handoff.decided} decided case(s), {handoff.runs} run(s)"
        )
    )
    if not handoff.suggestions:
        _say("  no rule is overridden often enough to suggest a change.")
    for suggestion in handoff.suggestions:
        _render_suggestion(suggestion)


def _render_suggestion(suggestion: Suggestion) -> None:
    _say(f"  {suggestion.rule}: {suggestion.evidence.summary}")
    if suggestion.evidence.examples:
        _say(f"      e.g. {', '.join(suggestion.evidence.examples)}")
    if suggestion.note:
        _say(f"    {suggestion.note}")
    if suggestion.change:
        for line in suggestion.change.splitlines():
            _say(f"    {line}")
    if suggestion.measured:
        _render_measured(suggestion.measured)


def _render_measured(measured: Measured) -> None:
    _say(
        f"    backtest: {len(measured.fewer_cases)} fewer case(s), {len(measured.new_cases)} new, over "
        f"{measured.compared} run(s); exception rate {_rate(measured.exception_rate_current_pct)} -> "
        f"{_rate(measured.exception_rate_proposed_pct)}"
    )
    for title, runs in (("fewer", measured.fewer_cases), ("new", measured.new_cases)):
        if runs:
            more = f" and {len(runs) - SHOWN} more (--json lists them all)" if len(runs) > SHOWN else ""
            _say(f"      {title}: {', '.join(runs[:SHOWN])}{more}")


def _rate(percent: float | None) -> str:
    return "-" if percent is None else f"{percent:.1f}%"


def _say(line: str) -> None:
    console.print(line, markup=False)
