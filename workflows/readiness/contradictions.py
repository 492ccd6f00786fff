"""Rules on one field that no value can satisfy together, stated as the smallest set of rules that clash.

A contradiction is written down by someone who meant one of the rules and not the other; the finding names every
rule involved so that person can choose. Three shapes are found, each through `satisfiability`:

- a rule that no present value can pass on its own (`OneOf(x, [""])`, a bound of NaN);
- unconditional rules that clash (`x >= 10` with `x <= 5`, disjoint `OneOf`s, `Required` with `Forbidden`);
- a `When` whose consequence clashes with the unconditional rules (or with another `When`) while its condition
  can hold: `Forbidden(x)` with `When(c, Required(x))` leaves events where `c` holds no way through.

The smallest clashing set is searched by size (pairs first, then triples); past that, rules are dropped one by one
while the rest still clashes, which leaves a set in which every rule is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, combinations

from handoff.schemas.contract import HandoffContract
from handoff.schemas.findings import Finding, FindingKind
from handoff.schemas.rule_tree import every_rule
from handoff.schemas.rules import Compare, Forbidden, Lookup, Required, Rule, When
from handoff.workflows.readiness.payload import PayloadShape, ValueKind
from handoff.workflows.readiness.rule_types import describe_kinds, type_mismatch
from handoff.workflows.readiness.satisfiability import FieldRule, is_field_rule, satisfiable

_EXHAUSTIVE_SIZE = 3
"""Clashing sets up to this size are searched exhaustively, so the smallest one is found."""


@dataclass(frozen=True)
class _Group:
    """Field rules that stand or fall together: one rule of the contract, or a `When`'s part on one field."""

    source: Rule
    order: int
    rules: tuple[FieldRule, ...]


@dataclass(frozen=True)
class _Conditional:
    """A `When`, flattened: the field rules its conditions impose, and the single-field rule it then asks for."""

    source: When
    order: int
    conditions: dict[str, tuple[FieldRule, ...]]
    then: FieldRule


@dataclass
class _Analysis:
    contract: HandoffContract
    shape: PayloadShape
    findings: list[Finding] = field(default_factory=list)

    def report(self, groups: Iterable[_Group], message: str) -> None:
        labels = _unique(group.source.label for group in sorted(groups, key=lambda group: group.order))
        self.findings.append(
            Finding(
                kind=FindingKind.CONTRADICTORY_RULES,
                contract=self.contract.name,
                subject=" / ".join(labels),
                message=f"{self.contract.name}: {message}",
            )
        )


def contradictory_rules(contract: HandoffContract, shape: PayloadShape) -> list[Finding]:
    """One finding per smallest set of clashing rules on a field, unconditional or under a `When`."""
    analysis = _Analysis(contract=contract, shape=shape)
    unconditional: dict[str, list[_Group]] = {}
    conditionals: list[_Conditional] = []
    for order, rule in enumerate(contract.rules):
        if is_field_rule(rule):
            unconditional.setdefault(rule.field, []).append(_Group(source=rule, order=order, rules=(rule,)))
        elif isinstance(rule, When):
            conditional = _flatten(rule, order, shape)
            if conditional is not None:
                conditionals.append(conditional)
    base = {path: _clashes_among(analysis, path, groups) for path, groups in unconditional.items()}
    targets: dict[str, list[_Conditional]] = {}
    for conditional in conditionals:
        targets.setdefault(conditional.then.field, []).append(conditional)
    for path, on_path in targets.items():
        _clashes_under_conditions(analysis, path, on_path, base)
    return analysis.findings


def _clashes_among(analysis: _Analysis, path: str, groups: list[_Group]) -> list[_Group]:
    """Report the unconditional clashes on one field; return the rules left, which no longer clash."""
    kinds = analysis.shape.kinds_of(path)
    if satisfiable(_rules_of(groups), kinds):
        return groups  # the common case, in one step: a rule that clashes alone would make the whole set clash
    kept: list[_Group] = []
    for group in groups:
        if satisfiable(group.rules, kinds):
            kept.append(group)
        elif type_mismatch(group.source, analysis.shape) is None:  # a type mismatch is reported on its own
            analysis.report(
                [group],
                f"rule '{group.source.label}' can never be met: no value of {path} "
                f"({describe_kinds(kinds)}) passes it, so every event with a value there would open an exception "
                "case. Fix the rule's values.",
            )
    while not satisfiable(_rules_of(kept), kinds):
        core = _smallest_clash(kept, mandatory=(), kinds=kinds)
        analysis.report(core, _clash_message(path, core, kinds))
        kept = [group for group in kept if group not in core]
    return kept


def _clashes_under_conditions(
    analysis: _Analysis, path: str, conditionals: list[_Conditional], base: dict[str, list[_Group]]
) -> None:
    """Report each `When` (or pair of `When`s) whose consequence on `path` clashes once its condition holds."""
    clashing: set[int] = set()
    for conditional in conditionals:
        if _report_scenario(analysis, path, (conditional,), base):
            clashing.add(conditional.order)
    quiet = [conditional for conditional in conditionals if conditional.order not in clashing]
    for pair in combinations(quiet, 2):
        _report_scenario(analysis, path, pair, base)


def _report_scenario(
    analysis: _Analysis, path: str, scenario: Sequence[_Conditional], base: dict[str, list[_Group]]
) -> bool:
    shape = analysis.shape
    conditions: dict[str, list[FieldRule]] = {}
    for conditional in scenario:
        for condition_path, rules in conditional.conditions.items():
            conditions.setdefault(condition_path, []).extend(rules)
    for condition_path, imposed in conditions.items():
        if not satisfiable([*_rules_of(base.get(condition_path, [])), *imposed], shape.kinds_of(condition_path)):
            return False  # the conditions can never hold (together): nothing here ever applies
    mandatory = tuple(
        _Group(source=c.source, order=c.order, rules=(*c.conditions.get(path, ()), c.then)) for c in scenario
    )
    kinds = shape.kinds_of(path)
    optional = base.get(path, [])
    if satisfiable([*_rules_of(optional), *_rules_of(mandatory)], kinds):
        return False
    core = [*_smallest_clash(optional, mandatory=mandatory, kinds=kinds), *mandatory]
    whens = " and ".join(f"'{c.source.label}'" for c in scenario)
    others = [group for group in core if group not in mandatory]
    clash_with = (
        "with " + " and ".join(f"'{group.source.label}'" for group in others)
        if others
        else ("with each other" if len(scenario) > 1 else "with its own condition")
    )
    analysis.report(
        core,
        f"rule {whens} clashes {clash_with} on {path}: whenever the condition holds, which it can, no event can pass "
        f"them all, so every such event would open an exception case. Which one is meant? Fix or remove one.",
    )
    return True


def _smallest_clash(
    optional: Sequence[_Group], *, mandatory: Sequence[_Group], kinds: frozenset[ValueKind]
) -> list[_Group]:
    """The smallest subset of `optional` that clashes together with `mandatory` (which must clash with all of it)."""
    for size in range(min(_EXHAUSTIVE_SIZE, len(optional)) + 1):
        for subset in combinations(optional, size):
            if not satisfiable(_rules_of((*mandatory, *subset)), kinds):
                return list(subset)
    core = list(optional)
    for group in list(core):
        trial = [kept for kept in core if kept is not group]
        if not satisfiable(_rules_of((*mandatory, *trial)), kinds):
            core = trial
    return core


def _clash_message(path: str, core: Sequence[_Group], kinds: frozenset[ValueKind]) -> str:
    rules = list(_rules_of(core))
    labels = " and ".join(f"'{group.source.label}'" for group in sorted(core, key=lambda group: group.order))
    if any(isinstance(rule, Required) for rule in rules) and any(isinstance(rule, Forbidden) for rule in rules):
        return (
            f"{path} is both required and forbidden ({labels}): no event can pass both. Is {path} meant to travel "
            "with this event or not? Keep one of the rules."
        )
    return (
        f"the rules {labels} contradict each other: no value of {path} ({describe_kinds(kinds)}) passes them all, "
        f"so every event with a value there would open an exception case. Which one is meant? Fix or remove one."
    )


def _flatten(when: When, order: int, shape: PayloadShape) -> _Conditional | None:
    """The `When` as conditions and a single-field consequence; None when it is not of that shape, when its
    conditions can never hold, or when one of its rules is of the wrong type (reported on its own)."""
    if any(type_mismatch(placed.rule, shape) is not None for placed in every_rule((when,))):
        return None
    conditions: dict[str, tuple[FieldRule, ...]] = {}
    then: Rule = when
    while isinstance(then, When):
        imposed = _imposed_by(then.condition)
        if imposed is None:
            return None
        for path, rules in imposed.items():
            conditions[path] = (*conditions.get(path, ()), *rules)
        then = then.then
    if not is_field_rule(then):
        return None
    return _Conditional(source=when, order=order, conditions=conditions, then=then)


def _imposed_by(condition: Rule) -> dict[str, tuple[FieldRule, ...]] | None:
    """What a condition, read as a predicate, says about the fields it reads when it holds; None if it never can."""
    if isinstance(condition, Required | Forbidden):
        return {condition.field: (condition,)}
    if is_field_rule(condition):  # a value rule holds as a condition only when its field has a value
        return {condition.field: (_present(condition.field), condition)}
    if isinstance(condition, Compare):
        if condition.left == condition.right:
            return None if condition.op in ("<", ">", "!=") else {condition.left: (_present(condition.left),)}
        return {condition.left: (_present(condition.left),), condition.right: (_present(condition.right),)}
    if isinstance(condition, Lookup | When):
        return {}  # a look-up holds in evaluation; a nested When can hold by its condition failing
    return {}  # pragma: no cover - every rule kind is handled above


def _present(path: str) -> Required:
    return Required(field=path, reason="the condition needs a value here")


def _rules_of(groups: Iterable[_Group]) -> Iterable[FieldRule]:
    return chain.from_iterable(group.rules for group in groups)


def _unique(labels: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(labels))
