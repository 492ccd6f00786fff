"""Pure evaluation of a contract's declarative rules against a payload.

Deterministic and free of I/O, so the workflow runs it inline (no activity, nothing in history) and the readiness
gate's tests can use it as the ground truth for "does any value satisfy these rules?". `Lookup` rules need another
system: a validation activity answers every look-up first (`lookups_of`), and its answers come in as the labels of
the look-ups that failed. A look-up of the contract itself is a violation the activity reports; one inside a
`When` counts only through that `When`.

Payloads are read as plain dicts (`model.model_dump()`, so dates stay dates) through `entity.field` paths
(`schemas.paths`).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import Any

from handoff.schemas.cases import Violation
from handoff.schemas.paths import value_at
from handoff.schemas.rule_tree import every_rule
from handoff.schemas.rules import (
    Compare,
    Forbidden,
    Lookup,
    Max,
    MaxLength,
    Min,
    OneOf,
    Pattern,
    Required,
    Rule,
    When,
)

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def is_present(value: Any) -> bool:
    """A value counts as present unless it is None, an empty string, or an empty collection."""
    if value is None:
        return False
    if isinstance(value, str | list | tuple | dict | set | frozenset):
        return len(value) > 0
    return True


def lookups_to_run(rules: Iterable[Rule], payload: Mapping[str, Any]) -> Iterator[tuple[Lookup, bool]]:
    """The look-ups a validation pass must ask, each with whether it sits inside a `When` (nested).

    Left out: a look-up whose value is absent (it holds, like every value rule: presence is `Required`'s job), and
    one inside a `When` whose condition does not hold (a condition that needs a look-up itself is asked too).
    """
    for rule in rules:
        yield from _lookups_in(rule, payload, nested=False)


def _lookups_in(rule: Rule, payload: Mapping[str, Any], *, nested: bool) -> Iterator[tuple[Lookup, bool]]:
    if isinstance(rule, Lookup):
        if is_present(value_at(payload, rule.field)):
            yield rule, nested
    elif isinstance(rule, When):
        yield from _lookups_in(rule.condition, payload, nested=True)
        asks_a_system = any(isinstance(placed.rule, Lookup) for placed in every_rule([rule.condition]))
        if asks_a_system or condition_holds(rule.condition, payload):
            yield from _lookups_in(rule.then, payload, nested=True)


def holds(rule: Rule, payload: Mapping[str, Any], failed_lookups: Collection[str] = ()) -> bool:
    """Whether the payload satisfies the rule. An absent value satisfies every value rule (only `Required` asks
    for presence). A `Lookup` holds unless its label is among `failed_lookups` (the activity's answers)."""
    match rule:
        case Required(field=field):
            return is_present(value_at(payload, field))
        case Forbidden(field=field):
            return not is_present(value_at(payload, field))
        case When(condition=condition, then=then):
            return not condition_holds(condition, payload, failed_lookups) or holds(then, payload, failed_lookups)
        case Lookup():
            return rule.label not in failed_lookups
        case _:
            return _value_rule_holds(rule, payload, when_absent=True)


def condition_holds(rule: Rule, payload: Mapping[str, Any], failed_lookups: Collection[str] = ()) -> bool:
    """A rule read as the condition of a `When`: a value rule holds only when its field has a value."""
    match rule:
        case Required() | Forbidden() | When() | Lookup():
            return holds(rule, payload, failed_lookups)
        case _:
            return _value_rule_holds(rule, payload, when_absent=False)


def _value_rule_holds(rule: Rule, payload: Mapping[str, Any], *, when_absent: bool) -> bool:
    match rule:
        case Compare(left=left, op=op, right=right):
            a, b = value_at(payload, left), value_at(payload, right)
            if not (is_present(a) and is_present(b)):
                return when_absent
            return _safely(lambda: _OPERATORS[op](a, b))
        case Min(field=field, value=bound, exclusive=exclusive):
            value = value_at(payload, field)
            if not is_present(value):
                return when_absent
            return _safely(lambda: value > bound if exclusive else value >= bound)
        case Max(field=field, value=bound, exclusive=exclusive):
            value = value_at(payload, field)
            if not is_present(value):
                return when_absent
            return _safely(lambda: value < bound if exclusive else value <= bound)
        case OneOf(field=field, values=values):
            value = value_at(payload, field)
            if not is_present(value):
                return when_absent
            return value in values
        case Pattern(field=field, regex=regex):
            value = value_at(payload, field)
            if not is_present(value):
                return when_absent
            return isinstance(value, str) and re.fullmatch(regex, value) is not None
        case MaxLength(field=field, value=limit):
            value = value_at(payload, field)
            if not is_present(value):
                return when_absent
            return isinstance(value, str | list | tuple) and len(value) <= limit
    raise TypeError(f"not a value rule: {rule!r}")  # pragma: no cover - the match above is exhaustive


def _safely(compare: Callable[[], bool]) -> bool:
    # A value of the wrong type (a text where a number is expected) breaks the rule rather than the workflow.
    try:
        return bool(compare())
    except TypeError:
        return False


def violation_of(rule: Rule, payload: Mapping[str, Any], failed_lookups: Collection[str] = ()) -> Violation | None:
    """The violation this rule finds in the payload, or None when it holds."""
    if holds(rule, payload, failed_lookups):
        return None
    if isinstance(rule, Compare):
        field = rule.left
        value: Any = {rule.left: value_at(payload, rule.left), rule.right: value_at(payload, rule.right)}
    elif isinstance(rule, When):
        field = rule.then.fields[0]
        value = value_at(payload, field)
    else:
        field = rule.fields[0]
        value = value_at(payload, field)
    return Violation(rule=rule.label, kind=rule.kind, field=field, value=value, reason=rule.reason)


def evaluate(
    rules: Iterable[Rule], payload: Mapping[str, Any], failed_lookups: Collection[str] = ()
) -> list[Violation]:
    """Every declarative rule the payload breaks, in the contract's order: one pass, not first-fail.

    The contract's own `Lookup`s are skipped (the activity reports their violations); those inside a `When` count
    through `failed_lookups`.
    """
    violations = []
    for rule in rules:
        if isinstance(rule, Lookup):
            continue
        violation = violation_of(rule, payload, failed_lookups)
        if violation is not None:
            violations.append(violation)
    return violations
