"""Suggested rule changes: each rule operators override, the change its approved values ask for, and its backtest.

How a suggestion is found and measured:

1. The rules: those the diagnosis signs as overridden (`overridden_rules`: approved as is in at least
   `override_share` of the operator-decided cases that broke it, over `min_cases` or more), with the same thresholds.
2. The evidence: the values of the approved violations of that rule (only approvals say what people accept; a
   rejection says the rule was right).
3. The change, for the kinds where one follows from those values: `Max` raised to the largest approved value, `Min`
   lowered to the smallest, `MaxLength` raised to the longest, `OneOf` widened by the approved values; a bound becomes
   inclusive, and the old bound written as a number in the reason is rewritten to the new one. Any other kind (a
   `Pattern`, a `When`, a `Lookup`...), or a rule the newest version no longer has, gets the evidence and a note.
4. The effect: the newest version and the proposed one (the newest with that one rule replaced, version + 1) are
   both backtested (`backtest_handoff`) over the runs received in the window; the runs one holds in a case and the
   other does not are the fewer and the new cases. Look-ups count as they did in the recorded runs.

Everything here is pure over the rows read (`read_cases`, `recorded_runs`): a test can feed it rows of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from handoff.activities.ledger.diagnosis import CaseFacts, overridden_rules
from handoff.schemas.backtest import HandoffBacktest, RecordedRun
from handoff.schemas.contract import DecisionKind, HandoffContract
from handoff.schemas.diagnosis import Thresholds, WarningSign
from handoff.schemas.paths import patched
from handoff.schemas.rules import Max, MaxLength, Min, OneOf, Rule, Scalar
from handoff.schemas.suggestions import Evidence, HandoffSuggestions, Measured, Suggestion, SuggestionReport
from handoff.workers.backtest import backtest_handoff
from handoff.workflows.validation import holds

SHOWN_VALUES = 5
"""Distinct non-numeric values named in an evidence summary; the JSON lists them all."""


async def suggest(
    contracts: Iterable[HandoffContract],
    cases: Iterable[CaseFacts],
    runs: Iterable[RecordedRun],
    *,
    since: datetime,
    now: datetime,
    thresholds: Thresholds | None = None,
) -> SuggestionReport:
    """The suggestions for every contract (the app's newest versions) from its cases and recorded runs."""
    thresholds = thresholds or Thresholds()
    cases, runs = list(cases), list(runs)
    return SuggestionReport(
        generated_at=now,
        since=since,
        thresholds=thresholds,
        handoffs=[
            await suggest_handoff(
                contract,
                [case for case in cases if case.handoff == contract.name],
                [run for run in runs if run.handoff == contract.name],
                thresholds,
            )
            for contract in contracts
        ],
    )


async def suggest_handoff(
    contract: HandoffContract, cases: Sequence[CaseFacts], runs: Sequence[RecordedRun], thresholds: Thresholds
) -> HandoffSuggestions:
    """One suggestion per rule of `contract` that its operator-decided `cases` override, measured over `runs`."""
    by_operators = [case for case in cases if case.decided_by_operator]
    current: HandoffBacktest | None = None
    suggestions = []
    for sign in overridden_rules(by_operators, thresholds):
        label = sign.subject or ""
        rule = next((rule for rule in contract.rules if rule.label == label), None)
        suggestion = Suggestion(
            handoff=contract.name,
            rule=label,
            kind=None if rule is None else rule.kind,
            evidence=evidence(sign, approved_values(by_operators, label)),
            current=rule,
        )
        if rule is None:
            suggestion.note = f"v{contract.version} has no rule {label!r}: it was changed or removed since"
        else:
            proposed, note = propose(rule, suggestion.evidence.values)
            suggestion.note = note
            if proposed is not None and contract.trigger is not None:
                current = current or await backtest_handoff(contract, runs)
                changed = with_rule(contract, rule, proposed)
                suggestion.proposed, suggestion.version = proposed, changed.version
                suggestion.change = change(contract, rule, proposed)
                suggestion.measured = measure(runs, current, await backtest_handoff(changed, runs))
        suggestions.append(suggestion)
    return HandoffSuggestions(
        handoff=contract.name,
        version=contract.version,
        decided=len(by_operators),
        runs=len(runs),
        suggestions=suggestions,
    )


def approved_values(by_operators: Iterable[CaseFacts], rule: str) -> list[Any]:
    """The distinct values of `rule`'s violations in the approved cases: numbers in order, then the rest by text."""
    values = {
        json.dumps(violation.value, sort_keys=True, default=str): violation.value
        for case in by_operators
        if case.decision == DecisionKind.APPROVE
        for violation in case.violations
        if violation.rule == rule
    }
    return sorted(values.values(), key=_value_order)


def evidence(sign: WarningSign, values: Sequence[Any]) -> Evidence:
    """The overridden-rule sign's counts and the approved values, in one phrase."""
    approved, decided = sign.counts["approved"], sign.counts["decided"]
    return Evidence(
        decided=decided,
        approved=approved,
        values=list(values),
        summary=f"overridden {approved} of {decided} times, {_described(values)}",
        examples=sign.examples,
    )


def propose(rule: Rule, values: Sequence[Any]) -> tuple[Rule | None, str | None]:
    """The rule that lets every approved value pass, or None and why not."""
    numbers = [value for value in values if _is_number(value)]
    widened = isinstance(rule, Max | Min | MaxLength | OneOf)
    if widened and values and all(holds(rule, patched({}, {rule.fields[0]: value})) for value in values):
        return None, "no automatic suggestion: the rule already lets every approved value pass"
    match rule:
        case Max() | Min() if not numbers:
            return None, "no automatic suggestion: no approved value is a number"
        case Max():
            return _bound(rule, max(numbers))
        case Min():
            return _bound(rule, min(numbers))
        case MaxLength():
            lengths = [len(value) for value in values if isinstance(value, str | list)]
            if not lengths:
                return None, "no automatic suggestion: no approved value has a length"
            return _bound(rule, max(lengths))
        case OneOf():
            added = tuple(value for value in values if _is_scalar(value) and value not in rule.values)
            if not added:
                return None, "no automatic suggestion: every approved value is already one of the rule's values"
            return rule.model_copy(update={"values": (*rule.values, *added)}), None
    return None, f"no automatic suggestion: a change to a {rule.kind} rule does not follow from the values"


def _bound(rule: Max | Min | MaxLength, bound: float) -> tuple[Rule | None, str | None]:
    """`rule` with `bound` as its inclusive bound, and the old bound in its reason rewritten."""
    update: dict[str, Any] = {"value": bound if isinstance(rule, MaxLength) else float(bound)}
    if not isinstance(rule, MaxLength):
        update["exclusive"] = False
    proposed = rule.model_copy(update=update)
    old = re.compile(rf"(?<![\d.]){re.escape(f'{rule.value:g}')}(?!\.?\d)")
    return proposed.model_copy(update={"reason": old.sub(f"{bound:g}", rule.reason)}), None


def with_rule(contract: HandoffContract, old: Rule, new: Rule) -> HandoffContract:
    """The next version of `contract`: `old` replaced by `new`, everything else as it is."""
    rules = tuple(new if rule is old else rule for rule in contract.rules)
    return contract.model_copy(update={"version": contract.version + 1, "rules": rules})


def change(contract: HandoffContract, old: Rule, new: Rule) -> str:
    """The change as a developer would commit it: the rule line before and after, and the version to give."""
    return (
        f"# {contract.name}: in its rules,\n"
        f"-    {python(old)},\n"
        f"+    {python(new)},\n"
        f"# then bump version to {contract.version + 1} and run `handoff lock`."
    )


def python(rule: Rule) -> str:
    """`rule` as the Python that builds it: its class, then the fields that differ from their defaults."""
    said = rule.model_dump(exclude_defaults=True, exclude={"kind"})
    ordered = [key for key in said if key not in ("reason", "name")] + [k for k in ("reason", "name") if k in said]
    return f"{type(rule).__name__}({', '.join(f'{key}={_literal(said[key])}' for key in ordered)})"


def measure(runs: Sequence[RecordedRun], current: HandoffBacktest, proposed: HandoffBacktest) -> Measured:
    """The runs each version holds in a case, compared: fewer and new cases, with the proposed version's backtest."""
    held_now, held_then = _held(runs, current), _held(runs, proposed)
    return Measured(
        compared=current.runs - current.still_validating,
        fewer_cases=[run.workflow_id for run in runs if run.workflow_id in held_now - held_then],
        new_cases=[run.workflow_id for run in runs if run.workflow_id in held_then - held_now],
        exception_rate_current_pct=current.exception_rate_after_pct,
        exception_rate_proposed_pct=proposed.exception_rate_after_pct,
        backtest=proposed,
    )


def _held(runs: Sequence[RecordedRun], backtest: HandoffBacktest) -> set[str]:
    """The runs a backtested version would hold in a case: those recorded with one, less the ones it would let
    through or refuse at the edge, plus the ones it newly stops."""
    opened = {run.workflow_id for run in runs if run.judged and run.cases > 0}
    refused = {run.workflow_id for run in backtest.refused}
    let_through = {run.workflow_id for run in backtest.no_longer_opened}
    return (opened - refused - let_through) | {run.workflow_id for run in backtest.newly_opened}


def _described(values: Sequence[Any]) -> str:
    numbers = [value for value in values if _is_number(value)]
    if values and len(numbers) == len(values):
        low, high = min(numbers), max(numbers)
        return f"value {low:g}" if low == high else f"values {low:g}-{high:g}"
    shown = ", ".join(json.dumps(value, default=str) for value in values[:SHOWN_VALUES])
    more = f" and {len(values) - SHOWN_VALUES} more" if len(values) > SHOWN_VALUES else ""
    return f"value{'s' if len(values) != 1 else ''} {shown or 'none recorded'}{more}"


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple | list):
        items = [_literal(item) for item in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    return repr(value)


def _value_order(value: Any) -> tuple[int, float, str]:
    if _is_number(value):
        return 0, float(value), ""
    return 1, 0.0, json.dumps(value, sort_keys=True, default=str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, Scalar)
