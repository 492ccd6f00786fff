"""Every synced field fits the target field it is written to, or a rule stops the values that would not.

An adapter may declare what its system accepts (`accepts`: field name -> `TargetField`). For each field a contract
syncs to such a system, the gate asks three things:
1. does the system have that field at all (after the `SyncTarget`'s rename)?
2. can the payload's values be of the field's kind (a text into a whole number never fits)?
3. can they be longer or larger than the field holds? Then something must stop them before delivery: the payload
   model's own limit (`Field(max_length=255)`, `le=...`), which the edge enforces, or a rule of the contract
   (`MaxLength`, `Max`, `Min`, `OneOf`, a `Pattern` of bounded length), which turns the value into a violation a
   person decides. A dedupe key is bounded by the edge itself.
Fields with a transform are checked for their name only: the transform's output is not the model's type.
"""

from __future__ import annotations

import math
import re
import re._parser as re_parser  # the regex parser's own width of a pattern: no guessing from its text
from collections.abc import Mapping

from handoff.schemas.contract import MAX_DEDUPE_KEY_LENGTH, HandoffContract, SyncTarget
from handoff.schemas.findings import Finding, FindingKind
from handoff.schemas.rules import Max, MaxLength, Min, OneOf, Pattern, Rule
from handoff.schemas.systems import FieldKind, TargetField, number
from handoff.workflows.readiness.payload import FieldShape, PayloadShape, ValueKind
from handoff.workflows.readiness.rule_types import describe_kinds

_TAKES: dict[FieldKind, frozenset[ValueKind]] = {
    FieldKind.TEXT: frozenset({ValueKind.STR}),
    FieldKind.INTEGER: frozenset({ValueKind.INT}),
    FieldKind.NUMBER: frozenset({ValueKind.INT, ValueKind.FLOAT}),
    FieldKind.BOOLEAN: frozenset({ValueKind.BOOL}),
    FieldKind.DATE: frozenset({ValueKind.DATE}),
    FieldKind.DATETIME: frozenset({ValueKind.DATETIME}),
}
"""The payload value kinds each target field kind takes; JSON takes every kind."""


def target_field_findings(
    contract: HandoffContract, shape: PayloadShape, accepts: Mapping[str, Mapping[str, TargetField]]
) -> list[Finding]:
    """One finding per synced field its target system cannot take, or could not always hold."""
    if contract.sync is None:
        return []
    findings = []
    for target in contract.sync.targets:
        fields = accepts.get(target.system)
        if fields is None:
            continue  # the adapter declares nothing: delivery finds out, and a refusal opens a case
        for path in target.fields:
            problem = _misfit(contract, shape, target, path, fields)
            if problem is not None:
                kind, message = problem
                subject = f"{path} / {target.system}.{target.target_name(path)}"
                findings.append(Finding(kind=kind, contract=contract.name, subject=subject, message=message))
    return findings


def _misfit(
    contract: HandoffContract,
    shape: PayloadShape,
    target: SyncTarget,
    path: str,
    fields: Mapping[str, TargetField],
) -> tuple[FindingKind, str] | None:
    name = target.target_name(path)
    syncs = f"{contract.name} syncs {path} to {target.system}.{name}"
    accepted = fields.get(name)
    if accepted is None:
        known = ", ".join(sorted(fields)) or "none"
        return FindingKind.UNKNOWN_TARGET_FIELD, (
            f"{syncs}, but the {target.system} adapter accepts no such field (its fields: {known}): rename it in "
            "the SyncTarget, or stop syncing it."
        )
    field = shape.fields.get(path)
    if path in target.transforms or field is None or ValueKind.ANY in field.kinds:
        return None  # a transform's output, or a value the gate cannot read: delivery is the judge
    takes = _TAKES.get(accepted.kind)
    if takes is not None and field.kinds - takes:
        return FindingKind.TARGET_FIELD_TYPE, (
            f"{syncs}, which takes {accepted.describe()}, but {path} is {describe_kinds(field.kinds)}: sync a field "
            "of that type, or convert it with a transform."
        )
    rules = [rule for rule in contract.rules if _reads(rule, path)]
    limit = accepted.max_length
    dedupe_key = contract.trigger is not None and contract.trigger.dedupe_key == path
    if (
        accepted.kind is FieldKind.TEXT
        and limit is not None
        and not _length_bounded(field, rules, limit, dedupe_key=dedupe_key)
    ):
        return FindingKind.TARGET_FIELD_UNBOUNDED, (
            f"{syncs}, which holds {accepted.describe()}, and nothing stops a longer value: add MaxLength(field={path!r}, value={accepted.max_length}, reason=...) to the rules (a longer "
            f"value then waits for a decision), or max_length={accepted.max_length} to the payload model's field "
            "(the edge then refuses it)."
        )
    if accepted.kind in (FieldKind.INTEGER, FieldKind.NUMBER):
        unbounded = _unbounded_side(field, rules, accepted)
        if unbounded is not None:
            rule, bound = unbounded
            return FindingKind.TARGET_FIELD_UNBOUNDED, (
                f"{syncs}, which holds {accepted.describe()}, and nothing stops a value outside that: add {rule}(field={path!r}, value={number(bound)}, reason=...) to the rules, or the same "
                "bound to the payload model's field."
            )
    return None


def _reads(rule: Rule, path: str) -> bool:
    """A rule of the contract itself (not inside a `When`: that one holds only sometimes) on this field."""
    return isinstance(rule, MaxLength | Min | Max | OneOf | Pattern) and rule.field == path


def _length_bounded(field: FieldShape, rules: list[Rule], limit: int, *, dedupe_key: bool) -> bool:
    if field.max_length is not None and field.max_length <= limit:
        return True
    if dedupe_key and limit >= MAX_DEDUPE_KEY_LENGTH:
        return True  # the edge refuses a longer dedupe key before anything starts
    for rule in rules:
        if isinstance(rule, MaxLength) and rule.value <= limit:
            return True
        if isinstance(rule, OneOf) and all(isinstance(v, str) and len(v) <= limit for v in rule.values):
            return True
        if isinstance(rule, Pattern) and _longest_match(rule.regex) <= limit:
            return True
    return False


def _longest_match(regex: str) -> float:
    """The most characters `regex` can match in full (a `Pattern` such as `T\\d{1,3}` holds 4); infinite when it has
    no bound (`.*`) or cannot be read."""
    try:
        _, longest = re_parser.parse(regex).getwidth()
    except (re.error, RecursionError, OverflowError):
        return math.inf
    return math.inf if longest >= re_parser.MAXREPEAT else longest


def _unbounded_side(field: FieldShape, rules: list[Rule], accepted: TargetField) -> tuple[str, float] | None:
    """The first side (lower, then upper) of the target's range that nothing keeps the value within, if any."""
    if any(isinstance(rule, OneOf) and _all_within(rule.values, accepted) for rule in rules):
        return None
    if accepted.minimum is not None:
        lowest = [rule.value for rule in rules if isinstance(rule, Min)]
        if field.minimum is not None:
            lowest.append(field.minimum)
        if not any(bound >= accepted.minimum for bound in lowest):
            return "Min", accepted.minimum
    if accepted.maximum is not None:
        highest = [rule.value for rule in rules if isinstance(rule, Max)]
        if field.maximum is not None:
            highest.append(field.maximum)
        if not any(bound <= accepted.maximum for bound in highest):
            return "Max", accepted.maximum
    return None


def _all_within(values: tuple[object, ...], accepted: TargetField) -> bool:
    low = accepted.minimum if accepted.minimum is not None else float("-inf")
    high = accepted.maximum if accepted.maximum is not None else float("inf")
    return all(
        isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high for value in values
    )
