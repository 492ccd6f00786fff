"""Can one field ever satisfy a set of its rules? The exact answer the contradiction check is built on.

A contract contradicts itself on a field when no present value passes every value rule on it (`Min`, `Max`, `OneOf`,
`Pattern`), or when the field is both required and forbidden. Absent values pass every value rule, so "no value at
all" never rescues a contradiction: `party_size <= 5` with `party_size >= 10` can only ever be met by leaving the
party size out, which is not what anyone meant.

The answer follows the evaluator's own semantics (`workflows.validation`): an int field is reasoned over integers, a
float field over reals, a bool field over {False, True}; a number rule on a text never holds (the comparison is a
`TypeError`, which the evaluator reads as broken); a pattern only ever matches a text. Finite candidate sets (from
`OneOf`) are checked with the evaluator itself. The one question left open is whether several regular expressions
share a match; that is given the benefit of the doubt, so the gate never reports a contradiction it cannot prove.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, TypeGuard

from handoff.schemas.rules import Forbidden, Max, Min, OneOf, Pattern, Required, Rule
from handoff.workflows.readiness.payload import NUMERIC_KINDS, ValueKind
from handoff.workflows.validation import holds

ValueRule = Min | Max | OneOf | Pattern
"""A rule that judges a present value of one field."""

FieldRule = Required | Forbidden | Min | Max | OneOf | Pattern
"""A rule about one field: its presence or its value."""

_SCALAR_KINDS = (ValueKind.INT, ValueKind.FLOAT, ValueKind.BOOL, ValueKind.STR)


def is_field_rule(rule: Rule) -> TypeGuard[FieldRule]:
    """Whether the rule reads exactly one field, unconditionally."""
    return isinstance(rule, Required | Forbidden | Min | Max | OneOf | Pattern)


def satisfiable(rules: Iterable[FieldRule], kinds: frozenset[ValueKind]) -> bool:
    """Whether the rules on one field can all hold: not both required and forbidden, and some present value passes
    every value rule."""
    rule_list = list(rules)
    if any(isinstance(rule, Required) for rule in rule_list) and any(isinstance(rule, Forbidden) for rule in rule_list):
        return False
    return present_value_exists([rule for rule in rule_list if isinstance(rule, ValueRule)], kinds)


def present_value_exists(rules: Sequence[ValueRule], kinds: frozenset[ValueKind]) -> bool:
    """Whether some present value of one of `kinds` passes every value rule."""
    if not rules:
        return True
    concrete = _SCALAR_KINDS if ValueKind.ANY in kinds else tuple(kinds)
    return any(_exists_of_kind(rules, kind) for kind in concrete)


def _exists_of_kind(rules: Sequence[ValueRule], kind: ValueKind) -> bool:
    one_ofs = [rule for rule in rules if isinstance(rule, OneOf)]
    if one_ofs:
        return any(_all_hold(rules, candidate) for candidate in _candidates(one_ofs[0].values, kind))
    if kind is ValueKind.BOOL:
        return any(_all_hold(rules, candidate) for candidate in (False, True))
    has_pattern = any(isinstance(rule, Pattern) for rule in rules)
    has_bound = any(isinstance(rule, Min | Max) for rule in rules)
    if kind is ValueKind.INT:
        return not has_pattern and _integer_interval_is_inhabited(rules)
    if kind is ValueKind.FLOAT:
        return not has_pattern and _real_interval_is_inhabited(rules)
    if kind is ValueKind.STR:
        return not has_bound  # patterns alone: whether they share a match is left open (see the module docstring)
    return False  # dates, lists, nested models: no value rule ever holds for them


def _candidates(values: Iterable[Any], kind: ValueKind) -> list[Any]:
    """The values of a `OneOf` that a present value of `kind` can equal, as that kind (an int field holds 1, not
    1.0 or True; `1 in (1.0,)` is still true)."""
    candidates: list[Any] = []
    for value in values:
        if isinstance(value, str):
            if kind is ValueKind.STR and value:
                candidates.append(value)
            continue
        if isinstance(value, int):  # bool included
            integral: int | None = int(value)
        else:
            integral = int(value) if math.isfinite(value) and value.is_integer() else None
        if kind is ValueKind.INT and integral is not None:
            candidates.append(integral)
        elif kind is ValueKind.BOOL and integral in (0, 1):
            candidates.append(bool(integral))
        elif kind is ValueKind.FLOAT and not (isinstance(value, float) and math.isnan(value)):
            try:
                candidates.append(float(value))
            except OverflowError:  # an int too large for any float field
                continue
    return candidates


def kind_accepts_one_of(values: Iterable[Any], kinds: frozenset[ValueKind]) -> bool:
    """Whether any value of a `OneOf` is of a kind the field can hold (presence aside)."""
    concrete = _SCALAR_KINDS if ValueKind.ANY in kinds else tuple(kinds)
    for value in values:
        if isinstance(value, str):
            if ValueKind.STR in concrete:
                return True
        elif any(kind in NUMERIC_KINDS and _candidates((value,), kind) for kind in concrete):
            return True
    return False


def _all_hold(rules: Sequence[ValueRule], value: Any) -> bool:
    return all(holds(rule, _payload_with(rule.field, value)) for rule in rules)


def _payload_with(path: str, value: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    node = payload
    *parents, leaf = path.split(".")
    for part in parents:
        node[part] = {}
        node = node[part]
    node[leaf] = value
    return payload


def _integer_interval_is_inhabited(rules: Sequence[ValueRule]) -> bool:
    low: int | None = None
    high: int | None = None
    for rule in rules:
        if not isinstance(rule, Min | Max):
            continue
        bound = rule.value
        if math.isnan(bound):
            return False  # every comparison with NaN is false
        if isinstance(rule, Min):
            if bound == math.inf:
                return False
            if bound == -math.inf:
                continue
            smallest = math.floor(bound) + 1 if rule.exclusive else math.ceil(bound)
            low = smallest if low is None else max(low, smallest)
        else:
            if bound == -math.inf:
                return False
            if bound == math.inf:
                continue
            largest = math.ceil(bound) - 1 if rule.exclusive else math.floor(bound)
            high = largest if high is None else min(high, largest)
    return low is None or high is None or low <= high


def _real_interval_is_inhabited(rules: Sequence[ValueRule]) -> bool:
    # Bounds are (value, strict); pydantic floats may be ±inf, so the reals here are the extended reals.
    low, low_strict = -math.inf, False
    high, high_strict = math.inf, False
    for rule in rules:
        if not isinstance(rule, Min | Max):
            continue
        if math.isnan(rule.value):
            return False
        if isinstance(rule, Min):
            if rule.value > low or (rule.value == low and rule.exclusive):
                low, low_strict = rule.value, rule.exclusive
        elif rule.value < high or (rule.value == high and rule.exclusive):
            high, high_strict = rule.value, rule.exclusive
    return low < high or (low == high and not low_strict and not high_strict)
