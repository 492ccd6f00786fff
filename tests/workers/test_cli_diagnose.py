"""`handoff diagnose`, as a user types it, on SQLite and PostgreSQL: the verdict and signs per handoff in text and
JSON, thresholds from HANDOFF_DIAGNOSE_*, exit 0 whatever the verdict, 2 on a bad --since or --handoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from handoff.schemas.diagnosis import DiagnosisReport, SignKind, Verdict
from tests.activities.test_diagnosis import write_patterns
from tests.workers.cli_runner import handoff


@pytest.fixture
def env(ledger: Engine, ledger_url: str, tmp_path: Path) -> dict[str, str]:
    """`handoff` pointed at a ledger with the planted patterns (cases opened two days ago) and the test's app."""
    write_patterns(ledger, start=datetime.now(UTC) - timedelta(days=2))
    return {
        "HANDOFF_APP": "tests.activities.test_diagnosis:APP",
        "HANDOFF_HOME": str(tmp_path / "home"),
        "HANDOFF_DATABASE_URL": ledger_url,
        "HANDOFF_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",
    }


async def test_diagnose_prints_each_verdict_and_the_signs_with_their_evidence(env: dict[str, str]) -> None:
    """The text output: a verdict per handoff, then each sign with its theme, subject, figures and example cases."""
    result = await handoff(env, "diagnose", "--since", "7d")

    assert 0 == result.exit_code, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Diagnosis: cases opened since ") and lines[0].endswith("(7d).")
    verdicts = {line.split()[0]: line.split()[1] for line in lines[2:6]}
    assert {
        "order-intake": "diagnose-first",
        "ticket-sync": "diagnose-first",
        "invoice-run": "integrate",
        "lead-handover": "diagnose-first",
    } == verdicts
    assert (
        "  [overridden-rule] exceptions depend on informal knowledge. order.total <= 500: approved as is in 9 of 10 "
        "decided case(s) (90%): the rule is not the one people apply" in lines
    )
    assert "  [nobody-decides] automation before the rule. 4 of 6 decided case(s) (67%) ended by timeout" in (
        result.stdout
    )
    assert "      e.g. order-intake-C11, order-intake-C12" in lines


async def test_diagnose_json_is_the_report_and_thresholds_come_from_the_settings(env: dict[str, str]) -> None:
    """`--json` parses as a DiagnosisReport; HANDOFF_DIAGNOSE_OVERRIDE_SHARE=0.95 leaves a rule approved 9 times in
    10 unflagged; --handoff limits the report to one handoff."""
    default = await handoff(env, "diagnose", "--json")
    strict = await handoff(
        {**env, "HANDOFF_DIAGNOSE_OVERRIDE_SHARE": "0.95"}, "diagnose", "--json", "--handoff", "order-intake"
    )

    assert (0, 0) == (default.exit_code, strict.exit_code), default.output + strict.output
    report, only = (
        DiagnosisReport.model_validate_json(default.stdout),
        DiagnosisReport.model_validate_json(strict.stdout),
    )
    assert {
        "order-intake": [SignKind.SPLIT_DECISION, SignKind.OVERRIDDEN_RULE],
        "ticket-sync": [SignKind.NOBODY_DECIDES],
        "invoice-run": [],
        "lead-handover": [SignKind.FOREIGN_CORRECTION, SignKind.TERSE_REASONS, SignKind.MISSED_SLAS],
    } == {diagnosis.handoff: [sign.kind for sign in diagnosis.signs] for diagnosis in report.handoffs}
    assert 0.5 == report.thresholds.override_share
    [intake] = only.handoffs
    assert (0.95, Verdict.DIAGNOSE_FIRST, [SignKind.SPLIT_DECISION]) == (
        only.thresholds.override_share,
        intake.verdict,
        [sign.kind for sign in intake.signs],
    )


async def test_diagnose_refuses_a_bad_span_or_an_unknown_handoff(env: dict[str, str]) -> None:
    """A bare number for --since, or a handoff the app does not have: exit 2, naming the option and what to write."""
    bare = await handoff(env, "diagnose", "--since", "30")
    unknown = await handoff(env, "diagnose", "--handoff", "nope")

    assert (2, 2) == (bare.exit_code, unknown.exit_code)
    assert "--since" in bare.output and "e.g. 90d, 12h or 30m" in bare.output
    assert "--handoff" in unknown.output and "known: invoice-run, lead-handover, order-intake, ticket-sync" in (
        unknown.output
    )


async def test_a_window_without_cases_says_integrate_and_exits_0(env: dict[str, str]) -> None:
    """Cases opened two days ago are outside --since 1d: every handoff integrates, with a note on too few cases."""
    result = await handoff(env, "diagnose", "--since", "1d", "--json")

    assert 0 == result.exit_code, result.output
    report = DiagnosisReport.model_validate_json(result.stdout)
    assert {Verdict.INTEGRATE} == {diagnosis.verdict for diagnosis in report.handoffs}
    assert [0, 0, 0, 0] == [diagnosis.cases for diagnosis in report.handoffs]
