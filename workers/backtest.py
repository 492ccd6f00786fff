"""The backtest: recorded runs judged again by the app's current rules, and what would have been different.

Each run is judged as the workflow would judge it today: its payload read by the trigger's model (a payload that
no longer fits would be refused at the edge, with its field errors), then `evaluate` on the typed payload, with the
look-ups the current rules ask. Everything here is pure except those look-ups, which touch the user's systems:
they are asked again only when the caller passes `look_up` (`handoff backtest --lookups`). Without it, a look-up
counts as it did in the recorded run: failed when the run's first case names its rule, passed otherwise. A look-up
inside a `When` never has a violation of its own (the `When` has it), so without `--lookups` it always passes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from handoff.schemas.backtest import Backtest, ChangedRun, HandoffBacktest, RecordedRun, RefusedRun, RuleCount
from handoff.schemas.cases import Violation
from handoff.schemas.contract import HandoffContract
from handoff.schemas.paths import value_at
from handoff.schemas.rules import Lookup
from handoff.schemas.runs import FieldError
from handoff.workers.trigger import field_errors
from handoff.workflows.validation import evaluate, lookups_to_run

LookUp = Callable[[str, Any], Awaitable[bool]]
"""Runs a named look-up on a value: `Handoffs.look_up`."""


class LookupFailed(Exception):
    """A look-up raised instead of answering: the backtest stops, since a guess would make its figures wrong."""


@dataclass(frozen=True)
class Verdict:
    """What the current rules make of one recorded payload: refused at the edge, or the rules it breaks."""

    refused: list[FieldError] | None
    violations: list[Violation]

    @property
    def opens_a_case(self) -> bool:
        return self.refused is None and bool(self.violations)


async def backtest(
    contracts: Iterable[HandoffContract],
    runs: Iterable[RecordedRun],
    *,
    since: datetime,
    now: datetime,
    look_up: LookUp | None = None,
) -> Backtest:
    """Every contract (the app's newest versions) against its recorded runs; `look_up` asks the systems again."""
    runs_of: dict[str, list[RecordedRun]] = defaultdict(list)
    for run in runs:
        runs_of[run.handoff].append(run)
    handoffs = [await backtest_handoff(contract, runs_of[contract.name], look_up=look_up) for contract in contracts]
    return Backtest(since=since, generated_at=now, lookups_rerun=look_up is not None, handoffs=handoffs)


async def backtest_handoff(
    contract: HandoffContract, runs: Sequence[RecordedRun], *, look_up: LookUp | None = None
) -> HandoffBacktest:
    """One handoff's runs judged by `contract`, and the differences counted.

    A run still in its first validation has no recorded verdict, so it is counted but not compared.
    """
    judged = [(run, await judge(contract, run, look_up=look_up)) for run in runs if run.judged]
    accepted = [(run, verdict) for run, verdict in judged if verdict.refused is None]
    opening = [verdict for _, verdict in accepted if verdict.opens_a_case]
    opened_before = sum(run.cases > 0 for run, _ in judged)
    return HandoffBacktest(
        handoff=contract.name,
        version=contract.version,
        content_hash=contract.content_hash(),
        runs=len(runs),
        still_validating=len(runs) - len(judged),
        opened_before=opened_before,
        exception_rate_before_pct=_percent(opened_before, len(judged)),
        refused=[
            RefusedRun(workflow_id=run.workflow_id, errors=verdict.refused)
            for run, verdict in judged
            if verdict.refused is not None
        ],
        would_open=len(opening),
        exception_rate_after_pct=_percent(len(opening), len(accepted)),
        newly_opened=[_changed(run, v) for run, v in accepted if v.opens_a_case and run.cases == 0],
        no_longer_opened=[_changed(run, v) for run, v in accepted if not v.opens_a_case and run.cases > 0],
        by_rule=_counted({violation.rule for violation in verdict.violations} for verdict in opening),
        by_field=_counted({violation.field for violation in verdict.violations} for verdict in opening),
    )


async def judge(contract: HandoffContract, run: RecordedRun, *, look_up: LookUp | None = None) -> Verdict:
    """The run's payload through the contract's trigger model and rules, as `HandoffWorkflow._validate` does."""
    assert contract.trigger is not None  # a contract without a trigger never ran
    try:
        typed = contract.trigger.payload.model_validate(run.payload).model_dump()
    except ValidationError as error:
        return Verdict(refused=field_errors(error), violations=[])
    asked = list(lookups_to_run(contract.rules, typed))
    if look_up is None:
        failed = {rule.label for rule, _ in asked if rule.label in run.first_case_rules}
    else:
        failed = await _failed_when_asked(asked, run, look_up)
    # Look-ups of the contract itself break as themselves; those inside a `When` only through it (`evaluate`).
    own = [_lookup_violation(rule, run.payload) for rule, nested in asked if not nested and rule.label in failed]
    return Verdict(refused=None, violations=evaluate(contract.rules, typed, failed) + own)


async def _failed_when_asked(asked: Sequence[tuple[Lookup, bool]], run: RecordedRun, look_up: LookUp) -> set[str]:
    """The labels of the look-ups that fail when asked now, on the value as received (as the workflow asks)."""
    failed = set()
    for rule, _ in asked:
        value = value_at(run.payload, rule.field)
        try:
            holds = await look_up(rule.check, value)
        except Exception as error:
            raise LookupFailed(
                f"The look-up {rule.check} raised on {rule.field}={value!r} of run {run.workflow_id}: "
                f"{type(error).__name__}: {error}. Fix the look-up or its system, or backtest without --lookups."
            ) from error
        if not holds:
            failed.add(rule.label)
    return failed


def _lookup_violation(rule: Lookup, payload: dict[str, Any]) -> Violation:
    return Violation(
        rule=rule.label, kind=rule.kind, field=rule.field, value=value_at(payload, rule.field), reason=rule.reason
    )


def _changed(run: RecordedRun, verdict: Verdict) -> ChangedRun:
    return ChangedRun(
        workflow_id=run.workflow_id,
        before=run.first_case_rules,
        after=tuple(violation.rule for violation in verdict.violations),
    )


def _counted(names_per_run: Iterable[Collection[str]]) -> list[RuleCount]:
    """How many runs name each name, the most first (then by name, so the order is stable)."""
    counts = Counter(name for names in names_per_run for name in names)
    return [
        RuleCount(name=name, runs=runs) for name, runs in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 4) if whole else None
