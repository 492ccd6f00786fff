"""`handoff purge`, as an operator types it, on SQLite and PostgreSQL: it purges ended runs older than --older-than
(else HANDOFF_RETENTION), says how many, never touches open or recent runs, and refuses a missing or bad span."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from handoff.activities.ledger.purge import purged_on
from handoff.schemas.runs import Stage
from tests.activities.test_purge import recorded_run
from tests.workers.cli_runner import handoff


def _env(ledger_url: str, tmp_path: Path, **variables: str) -> dict[str, str]:
    """`handoff` pointed at the test's ledger, with no retention unless given."""
    return {
        "HANDOFF_HOME": str(tmp_path / "home"),
        "HANDOFF_DATABASE_URL": ledger_url,
        "HANDOFF_LOG_LEVEL": "WARNING",
        "HANDOFF_RETENTION": "",
        "COLUMNS": "200",
        **variables,
    }


def _runs(ledger: Engine) -> dict[str, str]:
    """An old ended run, a recent one, and an old one still waiting on its case."""
    now = datetime.now(UTC)
    return {
        "old": recorded_run(ledger, "R-OLD", now - timedelta(days=200), Stage.DELIVERED),
        "recent": recorded_run(ledger, "R-RECENT", now - timedelta(days=10), Stage.REJECTED),
        "waiting": recorded_run(ledger, "R-WAITING", now - timedelta(days=200), None),
    }


def _purged(ledger: Engine, runs: dict[str, str]) -> set[str]:
    return {label for label, workflow_id in runs.items() if purged_on(ledger, workflow_id) is not None}


async def test_purge_older_than_purges_ended_runs_before_the_cutoff_once(
    ledger: Engine, ledger_url: str, tmp_path: Path
) -> None:
    """`--dry-run` counts the old ended run and purges nothing; `--older-than 90d` purges it alone and says so; a
    second purge finds nothing."""
    runs = _runs(ledger)
    env = _env(ledger_url, tmp_path)

    counted = await handoff(env, "purge", "--older-than", "90d", "--dry-run")
    after_count = _purged(ledger, runs)
    first = await handoff(env, "purge", "--older-than", "90d")
    after_first = _purged(ledger, runs)
    second = await handoff(env, "purge", "--older-than", "90d")

    assert (0, 0, 0) == (counted.exit_code, first.exit_code, second.exit_code), counted.output + first.output
    assert "1 run(s) that ended before" in counted.stdout and "would be purged" in counted.stdout
    assert (set(), {"old"}) == (after_count, after_first)
    assert first.stdout.startswith("Purged 1 run(s) that ended before")
    assert second.stdout.startswith("Purged 0 run(s)")
    assert {"old"} == _purged(ledger, runs)


async def test_purge_without_older_than_uses_the_retention_setting(
    ledger: Engine, ledger_url: str, tmp_path: Path
) -> None:
    """HANDOFF_RETENTION=5d purges both ended runs (200 and 10 days old); the waiting one stays; --older-than wins
    over the setting."""
    runs = _runs(ledger)

    wider = await handoff(_env(ledger_url, tmp_path, HANDOFF_RETENTION="365d"), "purge", "--older-than", "300d")
    after_wider = _purged(ledger, runs)
    retained = await handoff(_env(ledger_url, tmp_path, HANDOFF_RETENTION="5d"), "purge")

    assert (0, 0) == (wider.exit_code, retained.exit_code), wider.output + retained.output
    assert (set(), "Purged 0 run(s)") == (after_wider, wider.stdout[:15])
    assert retained.stdout.startswith("Purged 2 run(s)")
    assert {"old", "recent"} == _purged(ledger, runs)


async def test_purge_refuses_a_missing_or_malformed_span_and_purges_nothing(
    ledger: Engine, ledger_url: str, tmp_path: Path
) -> None:
    """No --older-than and no HANDOFF_RETENTION, `--older-than 90`, and `HANDOFF_RETENTION=ninety` each exit 2 with
    a message naming what to fix; no run is purged."""
    runs = _runs(ledger)

    missing = await handoff(_env(ledger_url, tmp_path), "purge")
    bare = await handoff(_env(ledger_url, tmp_path), "purge", "--older-than", "90")
    zero = await handoff(_env(ledger_url, tmp_path), "purge", "--older-than", "0d")
    setting = await handoff(_env(ledger_url, tmp_path, HANDOFF_RETENTION="ninety"), "purge")

    assert (2, 2, 2, 2) == (missing.exit_code, bare.exit_code, zero.exit_code, setting.exit_code)
    assert "--older-than" in missing.stderr and "HANDOFF_RETENTION" in missing.stderr
    assert "'90' is not a time span" in bare.stderr and "--older-than" in bare.stderr
    assert "'0d' is not a time span" in zero.stderr
    assert "HANDOFF_RETENTION: 'ninety' is not a time span" in setting.stderr
    assert set() == _purged(ledger, runs)
