"""Rules written for a different type than the field has: they can never hold, whatever the data says.

`Min(deal.currency, 0)` compares a text with a number, which the evaluator reads as broken for every present value;
`Pattern(reservation.party_size, ...)` matches texts only; `Forbidden(order.tip_cents)` on an `int = 0` field fails
every event, because 0 is a value. Such a rule would open an exception case for every event
that carries the field, so the gate names it before anything runs.
"""

from __future__ import annotations

from handoff.schemas.contract import HandoffContract
from handoff.schemas.findings import Finding, FindingKind
from handoff.schemas.rule_tree import every_rule
from handoff.schemas.rules import Compare, Forbidden, Max, MaxLength, Min, OneOf, Pattern, Rule
from handoff.workflows.readiness.payload import NUMERIC_KINDS, PayloadShape, ValueKind
from handoff.workflows.readiness.satisfiability import kind_accepts_one_of

KIND_NAMES: dict[ValueKind, str] = {
    ValueKind.INT: "a whole number (int)",
    ValueKind.FLOAT: "a number (float)",
    ValueKind.BOOL: "a yes/no (bool)",
    ValueKind.STR: "a text (str)",
    ValueKind.DATE: "a date",
    ValueKind.DATETIME: "a date and time",
    ValueKind.TIME: "a time of day",
    ValueKind.TIMEDELTA: "a duration",
    ValueKind.COLLECTION: "a list",
    ValueKind.MODEL: "a nested record",
    ValueKind.ANY: "anything",
}

_ORDER_FAMILIES: dict[ValueKind, str] = {
    # Values of one family compare with each other; across families `<` is a TypeError and `==` is never true.
    ValueKind.INT: "number",
    ValueKind.FLOAT: "number",
    ValueKind.BOOL: "number",
    ValueKind.STR: "text",
    ValueKind.DATE: "date",
    ValueKind.DATETIME: "datetime",
    ValueKind.TIME: "time",
    ValueKind.TIMEDELTA: "timedelta",
}


def describe_kinds(kinds: frozenset[ValueKind]) -> str:
    """'a text (str)', or 'a whole number (int) or a text (str)'."""
    return " or ".join(sorted(KIND_NAMES[kind] for kind in kinds)) or "always empty"


def type_mismatch(rule: Rule, shape: PayloadShape) -> str | None:
    """Why the rule can never hold for the field's type, or None when its type fits (or cannot be known)."""
    if isinstance(rule, Compare):
        return _comparison_mismatch(rule, shape)
    if isinstance(rule, Forbidden):
        field = shape.fields.get(rule.field)
        if field is not None and field.never_empty:
            return (
                f"{rule.field} is {describe_kinds(field.kinds)} that the payload model never leaves empty (it is not "
                "optional, or has a default), so forbidding it fails every event"
            )
        return None
    if not isinstance(rule, Min | Max | MaxLength | OneOf | Pattern):
        return None
    kinds = shape.kinds_of(rule.field)
    if ValueKind.ANY in kinds:
        return None
    if isinstance(rule, Min | Max) and not kinds & NUMERIC_KINDS:
        return f"{rule.field} is {describe_kinds(kinds)}, and a bound compares it with a number, which never holds"
    if isinstance(rule, MaxLength) and not kinds & {ValueKind.STR, ValueKind.COLLECTION}:
        return f"{rule.field} is {describe_kinds(kinds)}, and a length limit only ever applies to a text or a list"
    if isinstance(rule, Pattern) and ValueKind.STR not in kinds:
        return f"{rule.field} is {describe_kinds(kinds)}, and a pattern only ever matches a text"
    if isinstance(rule, OneOf) and not kind_accepts_one_of(rule.values, kinds):
        return f"{rule.field} is {describe_kinds(kinds)}, and none of the allowed values is of that type"
    return None


def _comparison_mismatch(rule: Compare, shape: PayloadShape) -> str | None:
    if rule.op == "!=":
        return None  # values of different types are always unequal: the rule holds, if uselessly
    left, right = shape.kinds_of(rule.left), shape.kinds_of(rule.right)
    left_families = {_ORDER_FAMILIES.get(kind) for kind in left}
    right_families = {_ORDER_FAMILIES.get(kind) for kind in right}
    if None in left_families or None in right_families or left_families & right_families:
        return None
    return (
        f"{rule.left} is {describe_kinds(left)} and {rule.right} is {describe_kinds(right)}: "
        f"values of these types never compare with '{rule.op}'"
    )


def rules_of_the_wrong_type(contract: HandoffContract, shape: PayloadShape) -> list[Finding]:
    """One finding per rule (inside `When`s too) that can never hold for its field's type."""
    findings = []
    for placed in every_rule(contract.rules):
        problem = type_mismatch(placed.rule, shape)
        if problem is None:
            continue
        findings.append(
            Finding(
                kind=FindingKind.RULE_TYPE_MISMATCH,
                contract=contract.name,
                subject=placed.rule.label,
                message=(
                    f"{contract.name}: {placed.where()} can never hold: {problem} (payload model "
                    f"{shape.model_name}). Every event with a value there would open an exception case. "
                    "Write the rule for the field's type, or change the field's type."
                ),
            )
        )
    return findings
