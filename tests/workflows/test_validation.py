"""The rule evaluator: what each rule kind says about a payload, and what it says about absent values."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from handoff.schemas.cases import Violation
from handoff.schemas.paths import value_at
from handoff.schemas.rules import Compare, Forbidden, Lookup, Max, Min, OneOf, Pattern, Required, Rule, When
from handoff.workflows.validation import condition_holds, evaluate, holds, is_present, lookups_to_run, violation_of


def payload(**deal: Any) -> dict[str, Any]:
    """A payload with one entity, `deal`, holding the given fields."""
    return {"deal": deal}


# Reading paths and presence.


def test_value_at_reads_nested_paths() -> None:
    """An `entity.field` path reads through nested mappings, any depth."""
    assert 3 == value_at({"a": {"b": {"c": 3}}}, "a.b.c")


@pytest.mark.parametrize("path", ["deal.missing", "nothing.here", "deal.amount.cents"])
def test_value_at_is_none_for_missing_paths(path: str) -> None:
    """A missing step, or a step into a non-mapping, reads as None rather than failing."""
    assert None is value_at(payload(amount=5), path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[(None, False), ("", False), ([], False), ({}, False), ((), False), (set(), False)],
        *[(0, True), (False, True), (0.0, True), ("x", True), ([0], True)],
    ],
)
def test_is_present(value: object, expected: bool) -> None:
    """None and empty texts or collections are absent; zero and False are values."""
    assert expected == is_present(value)


# Each rule kind on a present value.

CASES: list[tuple[Rule, Any, bool]] = [
    (Required(field="deal.x", reason="r"), 0, True),
    (Required(field="deal.x", reason="r"), "", False),
    (Forbidden(field="deal.x", reason="r"), "a", False),
    (Forbidden(field="deal.x", reason="r"), [], True),
    (Min(field="deal.x", value=5, reason="r"), 5, True),
    (Min(field="deal.x", value=5, reason="r"), 4.9, False),
    (Min(field="deal.x", value=5, exclusive=True, reason="r"), 5, False),
    (Min(field="deal.x", value=5, exclusive=True, reason="r"), 5.1, True),
    (Max(field="deal.x", value=5, reason="r"), 5, True),
    (Max(field="deal.x", value=5, reason="r"), 6, False),
    (Max(field="deal.x", value=5, exclusive=True, reason="r"), 5, False),
    (Max(field="deal.x", value=5, exclusive=True, reason="r"), -1, True),
    (OneOf(field="deal.x", values=("EUR", "USD"), reason="r"), "EUR", True),
    (OneOf(field="deal.x", values=("EUR", "USD"), reason="r"), "GBP", False),
    (OneOf(field="deal.x", values=(14, 30), reason="r"), 30.0, True),
    (Pattern(field="deal.x", regex=r"T\d+", reason="r"), "T12", True),
    (Pattern(field="deal.x", regex=r"T\d+", reason="r"), "xT12", False),
    (Pattern(field="deal.x", regex=r"T\d+", reason="r"), "T12x", False),
]


@pytest.mark.parametrize(("rule", "value", "expected"), CASES, ids=[f"{r.label}={v!r}" for r, v, _ in CASES])
def test_rule_on_a_present_value(rule: Rule, value: Any, expected: bool) -> None:
    """Each rule kind judges a present value as documented (bounds inclusive unless exclusive, patterns in full)."""
    assert expected == holds(rule, payload(x=value))


@pytest.mark.parametrize(
    "rule",
    [
        Min(field="deal.x", value=5, reason="r"),
        Max(field="deal.x", value=5, reason="r"),
        OneOf(field="deal.x", values=("a",), reason="r"),
        Pattern(field="deal.x", regex="a", reason="r"),
        Compare(left="deal.x", op=">", right="deal.y", reason="r"),
        Forbidden(field="deal.x", reason="r"),
    ],
    ids=lambda rule: rule.kind,
)
@pytest.mark.parametrize("absent", [None, "", []], ids=["none", "empty-text", "empty-list"])
def test_absent_values_pass_every_rule_but_required(rule: Rule, absent: Any) -> None:
    """Only Required asks for a value: every other rule passes when the field is absent."""
    assert holds(rule, payload(x=absent, y=1))
    assert not holds(Required(field="deal.x", reason="r"), payload(x=absent))


@pytest.mark.parametrize(
    ("op", "expected"), [("<", False), ("<=", False), (">", True), (">=", True), ("==", False), ("!=", True)]
)
def test_compare_operators(op: str, expected: bool) -> None:
    """Compare applies its operator to the two fields (here: a later date against an earlier one)."""
    rule = Compare(left="deal.ends", op=op, right="deal.starts", reason="r")  # type: ignore[arg-type]

    assert expected == holds(rule, payload(ends=date(2025, 5, 2), starts=date(2025, 5, 1)))


def test_compare_with_one_side_absent_passes() -> None:
    """A comparison only judges events that carry both fields."""
    rule = Compare(left="deal.ends", op=">", right="deal.starts", reason="r")

    assert holds(rule, payload(ends=None, starts=date(2025, 5, 1)))


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        (Min(field="deal.x", value=1, reason="r"), "ten"),
        (Max(field="deal.x", value=1, reason="r"), date(2025, 1, 1)),
        (Pattern(field="deal.x", regex=r"\d+", reason="r"), 12),
        (OneOf(field="deal.x", values=("12",), reason="r"), 12),
    ],
    ids=["min-on-text", "max-on-date", "pattern-on-int", "one-of-text-vs-int"],
)
def test_wrong_type_value_breaks_the_rule_not_the_workflow(rule: Rule, value: Any) -> None:
    """A value of the wrong type fails the rule instead of raising."""
    assert not holds(rule, payload(x=value))


def test_compare_across_types_breaks_the_rule() -> None:
    """Comparing a text with a number fails the rule instead of raising."""
    assert not holds(Compare(left="deal.x", op="<", right="deal.y", reason="r"), payload(x="a", y=1))


def test_lookup_holds_in_pure_evaluation() -> None:
    """A Lookup needs another system; pure evaluation lets it pass and `evaluate` skips it."""
    rule = Lookup(check="crm.account_exists", field="deal.x", reason="r")

    assert holds(rule, payload(x=None))
    assert [] == evaluate([rule], payload(x=None))


# Conditions.

EU = OneOf(field="deal.country", values=("DE", "FR"), reason="EU")
VAT_WHEN_EU = When(condition=EU, then=Required(field="deal.vat", reason="VAT"), reason="EU customers need a VAT id")


@pytest.mark.parametrize(
    ("country", "vat", "expected"),
    [("DE", None, False), ("DE", "DE123", True), ("US", None, True), (None, None, True)],
)
def test_when_applies_its_consequence_only_when_the_condition_holds(
    country: str | None, vat: str | None, expected: bool
) -> None:
    """A value condition holds only for a present value: no country means no VAT id is asked for."""
    assert expected == holds(VAT_WHEN_EU, payload(country=country, vat=vat))


def test_value_condition_does_not_hold_for_an_absent_value() -> None:
    """Read as a condition, a value rule is false for an absent value (as a rule it would pass)."""
    assert (True, False) == (holds(EU, payload()), condition_holds(EU, payload()))


@pytest.mark.parametrize(
    ("condition", "note", "expected"),
    [
        (Required(field="deal.note", reason="c"), "call first", False),
        (Required(field="deal.note", reason="c"), None, True),
        (Forbidden(field="deal.note", reason="c"), None, False),
        (Forbidden(field="deal.note", reason="c"), "call first", True),
    ],
)
def test_presence_conditions(condition: Rule, note: str | None, expected: bool) -> None:
    """Required and Forbidden, as conditions, test presence; here the consequence (amount >= 1) fails."""
    rule = When(condition=condition, then=Min(field="deal.amount", value=1, reason="t"), reason="r")

    assert expected == holds(rule, payload(note=note, amount=0))


# Look-ups inside a When: their answers come from the validation activity, as the labels that failed.

ACCOUNT_CHECKED_WHEN_EU = When(
    condition=EU,
    then=Lookup(check="crm.account_in_good_standing", field="deal.account", reason="t"),
    reason="EU accounts must be in good standing",
)


@pytest.mark.parametrize(
    ("country", "failed", "expected"),
    [
        ("DE", {"crm.account_in_good_standing(deal.account)"}, False),
        ("DE", set(), True),
        ("US", {"crm.account_in_good_standing(deal.account)"}, True),
    ],
)
def test_a_nested_lookup_counts_through_its_when(country: str, failed: set[str], expected: bool) -> None:
    """A failed look-up breaks its When only where the condition holds; a passed one never does."""
    found = evaluate([ACCOUNT_CHECKED_WHEN_EU], payload(country=country, account="A-1"), failed)

    assert expected == (found == [])
    assert expected == holds(ACCOUNT_CHECKED_WHEN_EU, payload(country=country, account="A-1"), failed)


@pytest.mark.parametrize(
    ("country", "account", "expected"),
    [
        ("DE", "A-1", [("top", False), ("nested", True)]),  # the When's condition holds: its look-up is asked
        ("US", "A-1", [("top", False)]),  # it does not: nothing to ask
        ("DE", None, []),  # no value: a look-up holds without asking, like every value rule
    ],
)
def test_lookups_to_run_are_those_that_apply(
    country: str, account: str | None, expected: list[tuple[str, bool]]
) -> None:
    top = Lookup(check="crm.account_exists", field="deal.account", reason="r")
    names = {top.label: "top", ACCOUNT_CHECKED_WHEN_EU.then.label: "nested"}

    found = lookups_to_run([top, ACCOUNT_CHECKED_WHEN_EU], payload(country=country, account=account))

    assert expected == [(names[rule.label], nested) for rule, nested in found]


def test_a_condition_that_needs_a_lookup_has_its_consequence_asked_too() -> None:
    condition = Lookup(check="crm.is_key_account", field="deal.account", reason="c")
    then = Lookup(check="crm.account_exists", field="deal.account", reason="t")
    rule = When(condition=condition, then=then, reason="r")

    assert [condition, then] == [found for found, _ in lookups_to_run([rule], payload(account="A-1"))]


# Violations.


def test_evaluate_reports_every_violation_in_contract_order() -> None:
    """One pass over all rules, not first-fail: each broken rule is one violation, in order."""
    rules = [
        Required(field="deal.amount", reason="An amount."),
        Max(field="deal.discount", value=30, reason="At most 30%."),
        Min(field="deal.discount", value=0, reason="Not negative."),
        VAT_WHEN_EU,
    ]

    violations = evaluate(rules, payload(amount=None, discount=45, country="FR"))

    expected = [
        Violation(
            rule="deal.amount is required", kind="required", field="deal.amount", value=None, reason="An amount."
        ),
        Violation(rule="deal.discount <= 30", kind="max", field="deal.discount", value=45, reason="At most 30%."),
        Violation(
            rule="if deal.country in {DE, FR} then deal.vat is required",
            kind="when",
            field="deal.vat",
            value=None,
            reason="EU customers need a VAT id",
        ),
    ]
    assert expected == violations


def test_compare_violation_carries_both_values() -> None:
    """A broken comparison records both sides, so the operator sees why."""
    rule = Compare(left="deal.ends", op=">", right="deal.starts", name="ends-after-start", reason="r")

    violation = violation_of(rule, payload(ends=1, starts=2))

    assert (
        Violation(
            rule="ends-after-start",
            kind="compare",
            field="deal.ends",
            value={"deal.ends": 1, "deal.starts": 2},
            reason="r",
        )
        == violation
    )


def test_no_violation_when_the_rule_holds() -> None:
    """violation_of is None for a rule that holds."""
    assert None is violation_of(Required(field="deal.x", reason="r"), payload(x=1))
