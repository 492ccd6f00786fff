"""`handoff backtest`: what the app's current rules would have done to the runs already received.

Before a rule change ships (as a new contract version), its owner runs the recorded payloads of past runs through
the newest version of each handoff and reads what would differ: runs that would open a case and did not, runs that
opened one and would not now, which rules and fields would fire, and the exception rate before and after. The
ledger is only read, and look-ups are asked of the real systems only with `--lookups`. Exit codes: 0 done, 1 the
ledger could not be read or a look-up raised, 2 bad input.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from handoff.activities.ledger.backtest import recorded_runs
from handoff.schemas.backtest import Backtest, ChangedRun, HandoffBacktest, RecordedRun, RefusedRun, RuleCount
from handoff.schemas.contract import HandoffContract
from handoff.workers.app import Handoffs
from handoff.workers.backtest import LookupFailed, backtest
from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.cli.cases import quiet_logging
from handoff.workers.settings import Settings, load_settings, parse_span
from handoff.workers.worker import open_ledger

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

SHOWN = 5
"""Runs listed per change in the text output; `--json` lists them all."""


@app.command(name="backtest")
def backtest_command(
    handoff: Annotated[str | None, typer.Option("--handoff", help="Only this handoff [default: every one].")] = None,
    since: Annotated[
        str, typer.Option("--since", metavar="SPAN", help="Runs received within this span: 7d, 12h, 30m.")
    ] = "30d",
    lookups: Annotated[
        bool, typer.Option("--lookups", help="Ask the look-ups again: they touch your real systems.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the backtest as JSON.")] = False,
    app_spec: AppOption = None,
) -> None:
    """Run the recorded payloads of past runs through your app's current rules and show what would differ.

    Each handoff's newest version judges the runs received within --since. Look-ups are not asked again unless
    --lookups: each counts as it did in the recorded run. The ledger is only read.
    """
    now = datetime.now(UTC)
    start = window_start(since, now)
    settings = load_settings()
    quiet_logging(settings)  # before the app is imported: an app may bind its loggers as it is built
    user_app = load_user_app(app_spec)
    contracts = contracts_to_test(user_app, handoff)
    runs = _read_runs(settings, [contract.name for contract in contracts], start)
    try:
        result = asyncio.run(
            backtest(contracts, runs, since=start, now=now, look_up=user_app.look_up if lookups else None)
        )
    except LookupFailed as failed:
        errors.print(str(failed), markup=False)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        render(result, since)


def window_start(text: str, now: datetime) -> datetime:
    """The moment `--since` (`7d`, `12h`, `30m`) reaches back to from `now`; a usage error (exit 2) naming the
    option otherwise."""
    try:
        return now - parse_span(text)
    except (ValueError, OverflowError) as error:  # OverflowError: further back than a datetime reaches
        message = str(error) if isinstance(error, ValueError) else f"{text!r} reaches back further than a date can"
        raise typer.BadParameter(message, param_hint="--since") from None


def contracts_to_test(user_app: Handoffs, name: str | None) -> list[HandoffContract]:
    """The newest version of every handoff, or of the one `--handoff` names; a usage error listing the known ones
    otherwise. A contract without a trigger never ran, so it has nothing to backtest."""
    contracts = list(user_app.catalog.contracts)
    if name is not None:
        contracts = [contract for contract in contracts if contract.name == name]
        if not contracts:
            known = ", ".join(sorted(c.name for c in user_app.catalog.contracts)) or "none"
            raise typer.BadParameter(f"the app has no handoff {name!r} (known: {known}).", param_hint="--handoff")
    return [contract for contract in contracts if contract.trigger is not None]


def _read_runs(settings: Settings, handoffs: Sequence[str], since: datetime) -> list[RecordedRun]:
    try:
        ledger = open_ledger(settings)
    except SQLAlchemyError as error:
        errors.print(f"Cannot open the ledger ({type(error).__name__}): check HANDOFF_DATABASE_URL.", markup=False)
        raise typer.Exit(1) from None
    try:
        return recorded_runs(ledger, handoffs=handoffs, since=since)
    finally:
        ledger.dispose()


# -- the text output --------------------------------------------------------------------------------------------------


def render(result: Backtest, span: str) -> None:
    """The window, how look-ups were counted, then each handoff's differences."""
    since = f"{result.since:%Y-%m-%d %H:%M} UTC ({span.strip()})"
    _say(f"Backtest: runs received since {since}, judged by the app's current rules.")
    if result.lookups_rerun:
        _say("Look-ups were asked again, of your systems as they are now.")
    else:
        _say(
            "Look-ups were not asked again: each counts as it did in the recorded run (failed where the run's first "
            "case names it, passed otherwise). Pass --lookups to ask your systems."
        )
    for handoff in result.handoffs:
        _say("")
        _render_handoff(handoff)


def _render_handoff(handoff: HandoffBacktest) -> None:
    console.print(Text.assemble((handoff.handoff, "bold"), f" v{handoff.version} ", (handoff.content_hash, "dim")))
    pending = f", {handoff.still_validating} still validating (not compared)" if handoff.still_validating else ""
    _say(f"  runs            {handoff.runs} received{pending}")
    if handoff.runs == handoff.still_validating:
        _say("  nothing to compare in this window.")
        return
    compared = handoff.runs - handoff.still_validating
    accepted = compared - len(handoff.refused)
    _say(
        f"  exception rate  before {_rate(handoff.exception_rate_before_pct)} ({handoff.opened_before} of {compared})"
        f"  ->  after {_rate(handoff.exception_rate_after_pct)} ({handoff.would_open} of {accepted})"
    )
    _changes("would open a case now, did not", handoff.newly_opened, lambda run: " · ".join(run.after))
    _changes("opened a case, would not now", handoff.no_longer_opened, lambda run: "was " + " · ".join(run.before))
    _changes("refused at the edge now", handoff.refused, _field_errors)
    if handoff.by_rule:
        _say("  would fire, in the runs that would open a case:")
        console.print(_counts("rule", handoff.by_rule), _counts("field", handoff.by_field))


def _changes(title: str, runs: Sequence[ChangedRun] | Sequence[RefusedRun], why: Callable[..., str]) -> None:
    _say(f"  {title + ':':<34} {len(runs)}")
    for run in runs[:SHOWN]:
        _say(f"      {run.workflow_id}: {why(run)}")
    if len(runs) > SHOWN:
        _say(f"      ... and {len(runs) - SHOWN} more (--json lists them all)")


def _field_errors(run: RefusedRun) -> str:
    return "; ".join(f"{error.field}: {error.message}" for error in run.errors)


def _counts(what: str, counts: Sequence[RuleCount]) -> Table:
    table = Table(box=None, padding=(0, 2, 0, 4), show_edge=False)
    table.add_column(what)
    table.add_column("runs", justify="right")
    for count in counts:
        table.add_row(Text(count.name), Text(str(count.runs)))
    return table


def _rate(percent: float | None) -> str:
    return "-" if percent is None else f"{percent:.1f}%"


def _say(line: str) -> None:
    console.print(line, markup=False)
