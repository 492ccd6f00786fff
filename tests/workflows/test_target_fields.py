"""The gate compares each synced field with what the target's adapter says it accepts: a value the target could not
store must be stopped by the payload model or a rule first, so it becomes a violation, not a refused delivery."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from pydantic import BaseModel, Field

from handoff import Handoffs, MaxLength, TargetField, WriteOutcome
from handoff.schemas.contract import Sync, SyncTarget, Trigger
from handoff.schemas.findings import FindingKind, Registries
from handoff.schemas.rules import Max, Min, OneOf, Pattern, Required, When
from handoff.workflows.validation import evaluate
from tests.workflows.sample_contracts import GROUPS, NAME, found, ready_contract
from tests.workflows.sample_contracts import check as gate

POS_ACCEPTS = {
    "booking_ref": TargetField.text(max_length=40),
    "booking_party_size": TargetField.integer(minimum=1, maximum=50),
    "guest_name": TargetField.text(max_length=10),
}
"""The sample contract syncs booking.id (as booking_ref), booking.party_size and guest.name to the POS."""

BOUNDED = (
    Required(field="booking.party_size", reason="The POS sizes the table from the party."),
    MaxLength(field="booking.id", value=40, reason="The POS keeps 40 characters of a reference."),
    Min(field="booking.party_size", value=1, reason="A party has someone in it."),
    Max(field="booking.party_size", value=12, reason="Larger parties are events."),
    MaxLength(field="guest.name", value=10, reason="The POS shows 10 characters."),
)


def _registries(accepts: Mapping[str, TargetField] = POS_ACCEPTS) -> Registries:
    return Registries(sources=frozenset({"bookings"}), targets=frozenset({"pos"}), accepts={"pos": dict(accepts)})


def test_fields_bounded_by_rules_pass() -> None:
    assert [] == found(gate(ready_contract(rules=BOUNDED), registries=_registries()))


def test_a_text_longer_than_the_target_holds_with_no_rule_is_a_finding_that_says_what_to_add() -> None:
    rules = tuple(rule for rule in BOUNDED if rule.fields != ("guest.name",))

    readiness = gate(ready_contract(rules=rules), registries=_registries())

    assert [(FindingKind.TARGET_FIELD_UNBOUNDED, NAME, "guest.name / pos.guest_name")] == found(readiness)
    message = readiness.findings[0].message
    assert "text of at most 10 characters" in message and "MaxLength(field='guest.name', value=10" in message


def test_a_looser_rule_does_not_count_nor_does_one_inside_a_when() -> None:
    loose = MaxLength(field="guest.name", value=11, reason="r")
    sometimes = When(
        condition=Required(field="booking.table", reason="c"),
        then=MaxLength(field="guest.name", value=5, reason="r"),
        reason="r",
    )
    others = tuple(rule for rule in BOUNDED if rule.fields != ("guest.name",))

    for rule in (loose, sometimes):
        readiness = gate(ready_contract(rules=(*others, rule)), registries=_registries())
        assert [FindingKind.TARGET_FIELD_UNBOUNDED] == [finding.kind for finding in readiness.findings]


def test_a_number_needs_both_sides_of_the_targets_range() -> None:
    no_max = tuple(rule for rule in BOUNDED if not isinstance(rule, Max))
    no_min = tuple(rule for rule in BOUNDED if not isinstance(rule, Min))
    too_high = (*no_max, Max(field="booking.party_size", value=80, reason="r"))
    listed = (*no_max[:1], *no_max[1:], OneOf(field="booking.party_size", values=(2, 4, 6), reason="r"))

    assert (
        "Max(field='booking.party_size', value=50"
        in gate(ready_contract(rules=no_max), registries=_registries()).findings[0].message
    )
    assert (
        "Min(field='booking.party_size', value=1"
        in gate(ready_contract(rules=no_min), registries=_registries()).findings[0].message
    )
    assert [FindingKind.TARGET_FIELD_UNBOUNDED] == [
        f.kind for f in gate(ready_contract(rules=too_high), registries=_registries()).findings
    ]
    assert [] == found(gate(ready_contract(rules=listed), registries=_registries()))


class _Limited(BaseModel):
    id: str = Field(min_length=1, max_length=40)
    party_size: int = Field(ge=1, le=50)


class _Guest(BaseModel):
    name: str = Field(max_length=10)
    phone: str | None = None


class _LimitedBooking(BaseModel):
    booking: _Limited
    guest: _Guest


def test_the_payload_models_own_limits_count_the_edge_enforces_them() -> None:
    trigger = Trigger(event="booking.confirmed", payload=_LimitedBooking, dedupe_key="booking.id")
    rules = (Required(field="booking.party_size", reason="r"),)

    assert [] == found(gate(ready_contract(trigger=trigger, rules=rules), registries=_registries()))


def test_a_field_the_target_does_not_have_and_a_value_of_the_wrong_kind() -> None:
    accepts = {**POS_ACCEPTS, "booking_party_size": TargetField.text(max_length=4)}
    del accepts["guest_name"]

    readiness = gate(ready_contract(rules=BOUNDED), registries=_registries(accepts))

    assert [
        (FindingKind.TARGET_FIELD_TYPE, NAME, "booking.party_size / pos.booking_party_size"),
        (FindingKind.UNKNOWN_TARGET_FIELD, NAME, "guest.name / pos.guest_name"),
    ] == found(readiness)
    assert "its fields: booking_party_size, booking_ref" in readiness.findings[1].message


def test_transformed_fields_are_checked_for_their_name_only() -> None:
    sync = Sync(
        targets=(
            SyncTarget(
                system="pos",
                fields=("booking.id", "booking.party_size", "guest.name"),
                rename={"booking.id": "booking_ref"},
                transforms={"guest.name": "initials"},
            ),
        )
    )
    registries = _registries().model_copy(update={"transforms": frozenset({"initials"})})
    rules = tuple(rule for rule in BOUNDED if rule.fields != ("guest.name",))

    assert [] == found(gate(ready_contract(sync=sync, rules=rules), registries=registries))


def test_systems_that_declare_nothing_are_not_judged() -> None:
    assert [] == found(gate(ready_contract(), registries=Registries(sources=frozenset({"bookings"}), targets=POS)))


POS = frozenset({"pos"})


def test_max_length_is_a_rule_like_the_others() -> None:
    rule = MaxLength(field="guest.name", value=3, reason="Three letters.")
    payload: dict[str, Any] = {"booking": {"id": "B1"}, "guest": {"name": "Alexandra"}}

    [violation] = evaluate((rule,), payload)

    assert ("len(guest.name) <= 3", "max_length", "guest.name", "Alexandra") == (
        violation.rule,
        violation.kind,
        violation.field,
        violation.value,
    )
    assert [] == evaluate((rule,), {"booking": {"id": "B1"}, "guest": {"name": "Ada"}})
    assert [] == evaluate((rule,), {"booking": {"id": "B1"}, "guest": {}})  # absent: Required's business


def test_max_length_on_a_number_is_a_rule_of_the_wrong_type() -> None:
    rule = MaxLength(field="booking.party_size", value=3, reason="r")

    readiness = gate(ready_contract(rules=(rule,)))

    assert [(FindingKind.RULE_TYPE_MISMATCH, NAME, rule.label)] == found(readiness)


class _Pos:
    def __init__(self, accepts: object) -> None:
        self.accepts = accepts

    def write(self, record_key: str, fields: Mapping[str, Any]) -> WriteOutcome:
        return WriteOutcome.WRITTEN


def test_the_app_reads_what_its_adapters_accept_and_refuses_a_malformed_declaration() -> None:
    app = Handoffs(groups=GROUPS, contracts=(ready_contract(rules=BOUNDED[:1]),))
    app.source("bookings")
    app.system("pos", _Pos(POS_ACCEPTS))

    assert {"pos": POS_ACCEPTS} == app.registries.accepts
    assert [FindingKind.TARGET_FIELD_UNBOUNDED] * 3 == [finding.kind for finding in app.readiness().findings]

    with pytest.raises(TypeError, match="must map each field name to a TargetField"):
        Handoffs(groups=GROUPS).system("pos", _Pos({"guest_name": 255}))


def test_a_pattern_of_bounded_length_and_the_dedupe_key_count_as_bounds() -> None:
    """`T\\d{1,3}` matches at most 4 characters; the edge refuses a dedupe key over 200; `.+` bounds nothing."""
    accepts = {**POS_ACCEPTS, "booking_ref": TargetField.text(max_length=200), "guest_name": TargetField.text(4)}
    others = tuple(rule for rule in BOUNDED if rule.fields not in (("guest.name",), ("booking.id",)))
    short = Pattern(field="guest.name", regex=r"T\d{1,3}", reason="r")
    endless = Pattern(field="guest.name", regex=r".+", reason="r")

    assert [] == found(gate(ready_contract(rules=(*others, short)), registries=_registries(accepts)))
    assert [(FindingKind.TARGET_FIELD_UNBOUNDED, NAME, "guest.name / pos.guest_name")] == found(
        gate(ready_contract(rules=(*others, endless)), registries=_registries(accepts))
    )
    narrower = {**accepts, "booking_ref": TargetField.text(max_length=199)}
    assert [(FindingKind.TARGET_FIELD_UNBOUNDED, NAME, "booking.id / pos.booking_ref")] == found(
        gate(ready_contract(rules=(*others, short)), registries=_registries(narrower))
    )
