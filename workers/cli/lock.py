"""`handoff lock`: record every contract version of the app in its lock file, to commit with the code.

It refuses to re-lock a version whose content changed (bump the version instead), keeps every version locked
before, and says which runs a version that left the app would strand (read from the ledger).
"""

from __future__ import annotations

from collections.abc import Iterable

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from handoff.activities.ledger.database import make_engine
from handoff.activities.ledger.reads import open_runs_by_version
from handoff.schemas.contract import HandoffContract
from handoff.workers.cli.app import AppOption, app, load_user_app
from handoff.workers.lock import LockProblem, write_lock
from handoff.workers.settings import load_settings
from handoff.workflows.readiness.locked import content_changed

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


@app.command()
def lock(app_spec: AppOption = None) -> None:
    """Record each contract version in the app's lock file: a changed contract then needs a new version, and runs
    of older versions keep their rules."""
    user_app = load_user_app(app_spec)
    if user_app.lock_file is None:
        errors.print(
            "The app has no lock file. Give it one, beside your code: "
            "Handoffs(..., lock_file=Path(__file__).parent / 'handoff.lock').",
            markup=False,
        )
        raise typer.Exit(2)
    try:
        before = user_app.lock()
    except LockProblem as problem:
        errors.print(str(problem), markup=False)
        raise typer.Exit(2) from None
    changed = content_changed(user_app.every_version(), before.hashes())  # the gate's own check
    if changed:
        for finding in changed:
            errors.print(finding.message, markup=False)
        errors.print("Nothing was locked.")
        raise typer.Exit(1)

    after = before.with_contracts(user_app.every_version())
    write_lock(user_app.lock_file, after)
    for name, versions in sorted(after.handoffs.items()):
        for version in sorted(versions, key=int):
            new = version not in before.handoffs.get(name, {})
            console.print(f"{name} v{version}  {versions[version].hash}  {'locked now' if new else 'locked before'}")
    console.print(f"Wrote {user_app.lock_file}.")
    _warn_about_stranded_runs(user_app.catalog.contracts, after.handoffs)


def _warn_about_stranded_runs(contracts: Iterable[HandoffContract], locked: Iterable[str]) -> None:
    """Runs still open under a handoff the app no longer has cannot finish: say so, with their count."""
    present = {contract.name for contract in contracts}
    removed = sorted(name for name in locked if name not in present)
    if not removed:
        return
    settings = load_settings()
    ledger = make_engine(settings.ledger_url)
    try:
        open_runs = open_runs_by_version(ledger)
    except SQLAlchemyError as error:
        errors.print(f"Could not read open runs from the ledger ({type(error).__name__}); check them before deploying.")
        return
    finally:
        ledger.dispose()
    for name in removed:
        stranded = {version: count for (handoff, version), count in open_runs.items() if handoff == name}
        if stranded:
            listed = ", ".join(f"v{version}: {count} open" for version, count in sorted(stranded.items()))
            errors.print(
                f"{name} is no longer in the app, but runs of it are still open ({listed}): they cannot finish "
                f"until {name} is back in the app. Keep it until they end.",
                markup=False,
            )
        else:
            console.print(f"{name} is no longer in the app; no run of it is open. Its versions stay in the lock.")
