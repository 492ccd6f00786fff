"""Rules that contradict each other, or the field's type, are named by the gate: all the rules involved, no more.

Sample payload fields used here: booking.party_size (int), booking.deposit (float), booking.table and
booking.channel (str), booking.starts_at / ends_at / seated_at (datetime), booking.opened_on (date), booking.vip
(bool), guest.name (str).
"""

from __future__ import annotations

from handoff.schemas.findings import FindingKind
from handoff.schemas.rules import Compare, Forbidden, Max, Min, OneOf, Pattern, Required, Rule, When
from tests.workflows.sample_contracts import NAME, check, found, ready_contract

CONTRADICTION = FindingKind.CONTRADICTORY_RULES
MISMATCH = FindingKind.RULE_TYPE_MISMATCH


def contradictions(*rules: Rule) -> list[tuple[FindingKind, str, str]]:
    """The findings of the sample contract with these rules (it is READY otherwise)."""
    return found(check(ready_contract(rules=rules)))


def test_min_above_max() -> None:
    """A lower bound above the upper bound leaves no value, and both rules are named."""
    rules = (
        Min(field="booking.party_size", value=10, reason="r"),
        Max(field="booking.party_size", value=5, reason="r"),
    )

    assert [(CONTRADICTION, NAME, "booking.party_size >= 10 / booking.party_size <= 5")] == contradictions(*rules)


def test_equal_bounds_clash_only_when_one_is_exclusive() -> None:
    """min 5 and max 5 leave 5; min 5 exclusive and max 5 leave nothing."""
    inclusive = (Min(field="booking.deposit", value=5, reason="r"), Max(field="booking.deposit", value=5, reason="r"))
    exclusive = (
        Min(field="booking.deposit", value=5, exclusive=True, reason="r"),
        Max(field="booking.deposit", value=5, reason="r"),
    )

    assert [] == contradictions(*inclusive)
    assert [(CONTRADICTION, NAME, "booking.deposit > 5 / booking.deposit <= 5")] == contradictions(*exclusive)


def test_int_fields_are_reasoned_over_integers() -> None:
    """Between 1.5 (exclusive) and 1.9 lies no integer, but there are reals: only the int field clashes."""
    for field, expected in (
        ("booking.party_size", [(CONTRADICTION, NAME, "booking.party_size > 1.5 / booking.party_size <= 1.9")]),
        ("booking.deposit", []),
    ):
        rules = (Min(field=field, value=1.5, exclusive=True, reason="r"), Max(field=field, value=1.9, reason="r"))
        assert expected == contradictions(*rules)


def test_disjoint_one_of_sets() -> None:
    """Two closed sets without a common value leave no value."""
    rules = (
        OneOf(field="booking.channel", values=("web", "phone"), reason="r"),
        OneOf(field="booking.channel", values=("partner",), reason="r"),
    )

    assert [(CONTRADICTION, NAME, "booking.channel in {web, phone} / booking.channel in {partner}")] == contradictions(
        *rules
    )


def test_one_of_outside_the_bounds() -> None:
    """A closed set whose values all lie outside the bounds clashes with the bound that excludes them."""
    rules = (
        Required(field="booking.party_size", reason="r"),
        Min(field="booking.party_size", value=1, reason="r"),
        Max(field="booking.party_size", value=10, reason="r"),
        OneOf(field="booking.party_size", values=(20, 30), reason="r"),
    )

    assert [(CONTRADICTION, NAME, "booking.party_size <= 10 / booking.party_size in {20, 30}")] == contradictions(
        *rules
    )


def test_three_closed_sets_that_clash_only_together() -> None:
    """Sets that overlap two by two but share no value are found as a clash of three."""
    rules = (
        OneOf(field="booking.party_size", values=(1, 2), name="one-or-two", reason="r"),
        OneOf(field="booking.party_size", values=(2, 3), name="two-or-three", reason="r"),
        OneOf(field="booking.party_size", values=(1, 3), name="one-or-three", reason="r"),
    )

    assert [(CONTRADICTION, NAME, "one-or-two / two-or-three / one-or-three")] == contradictions(*rules)


def test_independent_clashes_on_one_field_are_reported_apart() -> None:
    """Two separate clashes on one field are two findings, each with its own rules."""
    rules = (
        Required(field="booking.table", reason="r"),
        OneOf(field="booking.table", values=("T1",), reason="r"),
        Forbidden(field="booking.table", reason="r"),
        OneOf(field="booking.table", values=("T2",), reason="r"),
    )

    expected = [
        (CONTRADICTION, NAME, "booking.table is required / booking.table is forbidden"),
        (CONTRADICTION, NAME, "booking.table in {T1} / booking.table in {T2}"),
    ]
    assert sorted(expected) == sorted(contradictions(*rules))


def test_required_and_forbidden() -> None:
    """A field cannot be both required and forbidden."""
    rules = (Required(field="guest.name", reason="r"), Forbidden(field="guest.name", reason="r"))

    assert [(CONTRADICTION, NAME, "guest.name is required / guest.name is forbidden")] == contradictions(*rules)


def test_rule_names_are_used_as_labels() -> None:
    """A rule's name, when it has one, is how the finding names it."""
    rules = (
        Min(field="booking.party_size", value=13, name="events-only", reason="r"),
        Max(field="booking.party_size", value=12, name="no-events", reason="r"),
    )

    assert [(CONTRADICTION, NAME, "events-only / no-events")] == contradictions(*rules)


def test_a_rule_no_value_can_meet() -> None:
    """A closed set of the empty text alone is never met by a present value."""
    assert [(CONTRADICTION, NAME, "booking.table in {}")] == contradictions(
        OneOf(field="booking.table", values=("",), reason="r")
    )


def test_a_bound_no_yes_no_value_can_meet() -> None:
    """A yes/no field is 0 or 1, so it can never be at least 2."""
    assert [(CONTRADICTION, NAME, "booking.vip >= 2")] == contradictions(Min(field="booking.vip", value=2, reason="r"))


# Comparisons between fields.


def test_comparison_both_ways() -> None:
    """a > b together with b > a cannot hold."""
    rules = (
        Compare(left="booking.starts_at", op=">", right="booking.ends_at", reason="r"),
        Compare(left="booking.ends_at", op=">", right="booking.starts_at", reason="r"),
    )

    expected = [(CONTRADICTION, NAME, "booking.starts_at > booking.ends_at / booking.ends_at > booking.starts_at")]
    assert expected == contradictions(*rules)


def test_strict_and_non_strict_comparison() -> None:
    """a < b together with a >= b cannot hold; a <= b with a >= b can (a == b)."""
    clash = (
        Compare(left="booking.starts_at", op="<", right="booking.ends_at", reason="r"),
        Compare(left="booking.starts_at", op=">=", right="booking.ends_at", reason="r"),
    )
    fine = (
        Compare(left="booking.starts_at", op="<=", right="booking.ends_at", reason="r"),
        Compare(left="booking.starts_at", op=">=", right="booking.ends_at", reason="r"),
    )

    expected = [(CONTRADICTION, NAME, "booking.starts_at < booking.ends_at / booking.starts_at >= booking.ends_at")]
    assert expected == contradictions(*clash)
    assert [] == contradictions(*fine)


def test_cycle_of_three_comparisons() -> None:
    """starts < seated < ends < starts is a cycle: all three rules are named, an unrelated one is not."""
    rules = (
        Compare(left="booking.starts_at", op="<", right="booking.seated_at", name="seated-after-start", reason="r"),
        Compare(left="booking.opened_on", op="<=", right="booking.opened_on", name="unrelated", reason="r"),
        Compare(left="booking.seated_at", op="<", right="booking.ends_at", name="ends-after-seated", reason="r"),
        Compare(left="booking.ends_at", op="<=", right="booking.starts_at", name="ends-before-start", reason="r"),
    )

    assert [(CONTRADICTION, NAME, "seated-after-start / ends-after-seated / ends-before-start")] == contradictions(
        *rules
    )


def test_unequal_fields_that_must_be_equal() -> None:
    """a != b together with a == b cannot hold."""
    rules = (
        Compare(left="booking.starts_at", op="==", right="booking.ends_at", reason="r"),
        Compare(left="booking.ends_at", op="!=", right="booking.starts_at", reason="r"),
    )

    expected = [(CONTRADICTION, NAME, "booking.starts_at == booking.ends_at / booking.ends_at != booking.starts_at")]
    assert expected == contradictions(*rules)


def test_field_compared_with_itself() -> None:
    """a < a never holds; a <= a always does."""
    assert [(CONTRADICTION, NAME, "booking.starts_at < booking.starts_at")] == contradictions(
        Compare(left="booking.starts_at", op="<", right="booking.starts_at", reason="r")
    )
    assert [] == contradictions(Compare(left="booking.starts_at", op="<=", right="booking.starts_at", reason="r"))


# Conditional rules.


def test_when_requires_what_is_forbidden() -> None:
    """A When that requires a forbidden field clashes whenever its condition holds."""
    when = When(
        condition=Min(field="booking.party_size", value=8, reason="c"),
        then=Required(field="guest.name", reason="t"),
        name="large-parties-named",
        reason="r",
    )

    expected = [(CONTRADICTION, NAME, "guest.name is forbidden / large-parties-named")]
    assert expected == contradictions(Forbidden(field="guest.name", reason="r"), when)


def test_when_bound_beyond_the_unconditional_bound() -> None:
    """max 5, and min 10 when a condition holds, clash for every event that meets the condition."""
    when = When(
        condition=OneOf(field="booking.channel", values=("partner",), reason="c"),
        then=Min(field="booking.party_size", value=10, reason="t"),
        name="partners-book-big",
        reason="r",
    )

    expected = [(CONTRADICTION, NAME, "booking.party_size <= 5 / partners-book-big")]
    assert expected == contradictions(Max(field="booking.party_size", value=5, reason="r"), when)


def test_when_whose_condition_cannot_hold_is_no_clash() -> None:
    """A When that never applies (its condition clashes with the rules) clashes with nothing."""
    rules = (
        Max(field="booking.party_size", value=5, reason="r"),
        Forbidden(field="guest.name", reason="r"),
        When(
            condition=Min(field="booking.party_size", value=8, reason="c"),
            then=Required(field="guest.name", reason="t"),
            reason="r",
        ),
    )

    assert [] == contradictions(*rules)


def test_whens_with_exclusive_conditions_do_not_clash() -> None:
    """Requiring a field for deliveries and forbidding it for pickups is consistent."""
    rules = (
        When(
            condition=OneOf(field="booking.channel", values=("delivery",), reason="c"),
            then=Required(field="guest.name", reason="t"),
            reason="r",
        ),
        When(
            condition=OneOf(field="booking.channel", values=("pickup",), reason="c"),
            then=Forbidden(field="guest.name", reason="t"),
            reason="r",
        ),
    )

    assert [] == contradictions(*rules)


def test_two_whens_that_clash_under_one_condition() -> None:
    """Two Whens whose conditions can hold together and whose consequences clash are named together."""
    vip = Required(field="booking.vip", reason="c")
    rules = (
        When(condition=vip, then=Min(field="booking.deposit", value=100, reason="t"), name="vip-deposit", reason="r"),
        When(condition=vip, then=Max(field="booking.deposit", value=50, reason="t"), name="vip-discount", reason="r"),
    )

    assert [(CONTRADICTION, NAME, "vip-deposit / vip-discount")] == contradictions(*rules)


def test_when_that_contradicts_its_own_condition() -> None:
    """'if the party is 8 or more, it is at most 5' can only hold by the condition failing."""
    when = When(
        condition=Min(field="booking.party_size", value=8, reason="c"),
        then=Max(field="booking.party_size", value=5, reason="t"),
        reason="r",
    )

    assert [(CONTRADICTION, NAME, "if booking.party_size >= 8 then booking.party_size <= 5")] == contradictions(when)


# Rules of the wrong type for their field.


def test_bound_on_a_text_field() -> None:
    """A bound on a text can never hold: the comparison with a number is broken."""
    assert [(MISMATCH, NAME, "booking.table >= 1")] == contradictions(Min(field="booking.table", value=1, reason="r"))


def test_bound_on_a_date_field() -> None:
    """Dates do not compare with numbers either."""
    assert [(MISMATCH, NAME, "booking.opened_on <= 3")] == contradictions(
        Max(field="booking.opened_on", value=3, reason="r")
    )


def test_pattern_on_a_number_field() -> None:
    """A pattern only ever matches a text."""
    assert [(MISMATCH, NAME, "booking.party_size matches /\\d+/")] == contradictions(
        Pattern(field="booking.party_size", regex=r"\d+", reason="r")
    )


def test_one_of_with_values_of_another_type() -> None:
    """A whole-number field can never equal 'two' or 2.5."""
    assert [(MISMATCH, NAME, "booking.party_size in {two, 2.5}")] == contradictions(
        OneOf(field="booking.party_size", values=("two", 2.5), reason="r")
    )


def test_comparison_of_a_text_with_a_date() -> None:
    """Texts and dates never compare."""
    assert [(MISMATCH, NAME, "booking.table < booking.starts_at")] == contradictions(
        Compare(left="booking.table", op="<", right="booking.starts_at", reason="r")
    )


def test_forbidding_a_field_that_always_has_a_value() -> None:
    """A yes/no with a default is never empty, so forbidding it fails every event; an optional text can be empty."""
    assert [(MISMATCH, NAME, "booking.vip is forbidden")] == contradictions(
        Forbidden(field="booking.vip", reason="r"), Forbidden(field="booking.channel", reason="r")
    )


def test_wrong_type_inside_a_when() -> None:
    """The rules inside a When are checked too, and the When is not also called a contradiction."""
    when = When(
        condition=Pattern(field="booking.party_size", regex=r"\d+", reason="c"),
        then=Required(field="guest.name", reason="t"),
        reason="r",
    )

    assert [(MISMATCH, NAME, "booking.party_size matches /\\d+/")] == contradictions(
        Forbidden(field="guest.name", reason="r"), when
    )


def test_the_catalog_rules_that_look_alike_are_consistent() -> None:
    """Typical consistent rules (bounds, sets within bounds, patterns, a deposit When) raise nothing."""
    rules = (
        Required(field="booking.party_size", reason="r"),
        Min(field="booking.party_size", value=1, reason="r"),
        Max(field="booking.party_size", value=12, reason="r"),
        OneOf(field="booking.party_size", values=(2, 4, 6, 8, 40), reason="r"),
        Pattern(field="booking.table", regex=r"T\d{1,3}", reason="r"),
        OneOf(field="booking.table", values=("T1", "T2"), reason="r"),
        Compare(left="booking.ends_at", op=">", right="booking.starts_at", reason="r"),
        When(
            condition=Min(field="booking.party_size", value=8, reason="c"),
            then=Min(field="booking.deposit", value=1, reason="t"),
            reason="r",
        ),
    )

    assert [] == contradictions(*rules)
