"""`handoff purge`: remove the payload snapshots of runs that ended long enough ago, keeping the audit trail.

    handoff purge --older-than 90d        # or set HANDOFF_RETENTION=90d and run `handoff purge` (e.g. nightly)

A delivered, rejected or failed run that ended before the cutoff loses what the event carried: its payload, its
cases' payloads, violations' values, what corrections set and what deliveries wrote (`activities.ledger.purge`).
Its stages, times, decisions, escalations and refusals stay, and so does every figure of `handoff report`. Open runs
are never purged. The ledger marks each purged run, so reads say "purged on ..." rather than show nothing.

Temporal keeps a run's history (its payload too) until the namespace's retention passes; the API and the CLI show a
purged run without its payloads even while Temporal still has them. Exit codes: 0 done, 2 no or a bad time span.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from handoff.activities.ledger.purge import count_purgeable, purge_runs
from handoff.workers.cli.app import app
from handoff.workers.cli.cases import quiet_logging
from handoff.workers.settings import Settings, load_settings, parse_span
from handoff.workers.worker import opened_ledger

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


@app.command()
def purge(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="SPAN",
            help="Purge runs that ended longer ago than this: 90d, 12h, 30m (default: HANDOFF_RETENTION).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count the runs that would be purged.")] = False,
) -> None:
    """Remove the payloads of runs that ended before --older-than (else HANDOFF_RETENTION) from the ledger, keeping
    their stages, times, decisions and figures. Open runs are never purged."""
    settings = _settings()
    quiet_logging(settings)
    before = datetime.now(UTC) - retention(older_than, settings)
    with opened_ledger(settings) as ledger:
        if dry_run:
            count = count_purgeable(ledger, before=before)
            console.print(f"{count} run(s) that ended before {before:%Y-%m-%d %H:%M:%S} UTC would be purged.")
            return
        count = purge_runs(ledger, before=before)
    console.print(
        f"Purged {count} run(s) that ended before {before:%Y-%m-%d %H:%M:%S} UTC: their payloads are gone; their "
        "stages, times, decisions and figures stay."
    )


def retention(older_than: str | None, settings: Settings) -> timedelta:
    """How old an ended run must be to be purged: --older-than, else HANDOFF_RETENTION; a usage error (exit 2)
    naming both when neither is given, and the option when its span is malformed."""
    if older_than is not None:
        try:
            return parse_span(older_than)
        except ValueError as error:
            raise typer.BadParameter(f"{error}.", param_hint="--older-than") from None
    if settings.retention is None:
        raise typer.BadParameter(
            "no retention given: pass --older-than SPAN (e.g. --older-than 90d), or set HANDOFF_RETENTION=90d.",
            param_hint="--older-than",
        )
    return settings.retention


def _settings() -> Settings:
    """The settings; a malformed one (HANDOFF_RETENTION=90, say) is an exit 2 that names it, not a traceback."""
    try:
        return load_settings()
    except ValidationError as invalid:
        for problem in invalid.errors():
            errors.print(str(problem["msg"]).removeprefix("Value error, "), markup=False)
        raise typer.Exit(2) from None
