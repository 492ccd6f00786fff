"""`handoff diagnose`: is each handoff's process clear enough to integrate, or must it be diagnosed first?

Reads the cases opened within --since and names each warning sign found (teams deciding the same violation
differently, corrections of another system's records, rules approved away, reasons of a few words, cases nobody
decides, SLAs missed), with its counts and example cases (`activities/ledger/diagnosis.py` says how each is
found). The thresholds are the `HANDOFF_DIAGNOSE_*` settings. The verdict is information, so the command exits 0
whatever it says; 1 when the ledger cannot be read, 2 on bad input.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from handoff.activities.ledger.diagnosis import diagnose_ledger
from handoff.schemas.contract import HandoffContract
from handoff.schemas.diagnosis import Diagnosis, DiagnosisReport, Thresholds, Verdict
from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.cli.backtest import window_start
from handoff.workers.cli.cases import quiet_logging
from handoff.workers.settings import Settings, load_settings
from handoff.workers.worker import opened_ledger

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


@app.command(name="diagnose")
def diagnose_command(
    handoff: Annotated[str | None, typer.Option("--handoff", help="Only this handoff (default: every one).")] = None,
    since: Annotated[
        str, typer.Option("--since", metavar="SPAN", help="Cases opened within this span: 30d, 12h, 30m.")
    ] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Print the diagnosis as JSON.")] = False,
    app_spec: AppOption = None,
) -> None:
    """Per handoff, "integrate" or "diagnose-first", naming each warning sign in the ledger with its evidence.

    The signs: one violation decided both ways by different operators; corrections of fields another system owns;
    a rule approved as is most of the time; reasons of a few words; cases ending by timeout; escalations by group.
    """
    now = datetime.now(UTC)
    start = window_start(since, now)
    settings = load_settings()
    quiet_logging(settings)  # before the app is imported: an app may bind its loggers as it is built
    contracts = _contracts(load_user_app(app_spec).catalog.contracts, handoff)
    try:
        with opened_ledger(settings) as ledger:
            result = diagnose_ledger(ledger, contracts, since=start, thresholds=thresholds(settings), now=now)
    except SQLAlchemyError as error:
        errors.print(f"Cannot read the ledger ({type(error).__name__}): check HANDOFF_DATABASE_URL.", markup=False)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        render(result, since)


def thresholds(settings: Settings) -> Thresholds:
    """The thresholds the `HANDOFF_DIAGNOSE_*` settings give."""
    return Thresholds(
        min_cases=settings.diagnose_min_cases,
        override_share=settings.diagnose_override_share,
        timeout_share=settings.diagnose_timeout_share,
        escalation_share=settings.diagnose_escalation_share,
        short_reason_words=settings.diagnose_short_reason_words,
        short_reason_share=settings.diagnose_short_reason_share,
    )


def _contracts(contracts: tuple[HandoffContract, ...], name: str | None) -> list[HandoffContract]:
    if name is None:
        return list(contracts)
    chosen = [contract for contract in contracts if contract.name == name]
    if not chosen:
        known = ", ".join(sorted(contract.name for contract in contracts)) or "none"
        raise typer.BadParameter(f"the app has no handoff {name!r} (known: {known}).", param_hint="--handoff")
    return chosen


# -- the text output --------------------------------------------------------------------------------------------------


def render(result: DiagnosisReport, span: str) -> None:
    """The window, a verdict table, then each handoff's signs with their evidence."""
    _say(f"Diagnosis: cases opened since {result.since:%Y-%m-%d %H:%M} UTC ({span.strip()}).")
    table = Table(box=None, padding=(0, 2, 0, 0), show_edge=False)
    for column in ("handoff", "verdict", "cases", "decided", "signs"):
        table.add_column(column, justify="right" if column in ("cases", "decided") else "left")
    for diagnosis in result.handoffs:
        table.add_row(
            Text(diagnosis.handoff, "bold"),
            _verdict(diagnosis.verdict),
            Text(str(diagnosis.cases)),
            Text(str(diagnosis.decided)),
            Text(", ".join(dict.fromkeys(sign.kind.value for sign in diagnosis.signs)) or "-"),
        )
    console.print(table)
    for diagnosis in result.handoffs:
        if diagnosis.signs or diagnosis.notes:
            _say("")
            _render_handoff(diagnosis)


def _render_handoff(diagnosis: Diagnosis) -> None:
    console.print(Text.assemble((diagnosis.handoff, "bold"), ": ", _verdict(diagnosis.verdict)))
    for sign in diagnosis.signs:
        about = f" {sign.subject}:" if sign.subject else ""
        _say(f"  [{sign.kind.value}] {sign.theme.value}.{about} {sign.summary}")
        if sign.examples:
            _say(f"      e.g. {', '.join(sign.examples)}")
    for note in diagnosis.notes:
        _say(f"  note: {note}")


def _verdict(verdict: Verdict) -> Text:
    return Text(verdict.value, "green" if verdict is Verdict.INTEGRATE else "yellow")


def _say(line: str) -> None:
    console.print(line, markup=False)
