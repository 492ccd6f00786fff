"""The correction form without a server: the payload's fields as inputs, and posted inputs back into a patch the
run takes, or problems in pydantic's words beside the fields they are about."""

from __future__ import annotations

import json

from examples.restaurant.order_to_kitchen import OrderPlaced
from examples.restaurant.reservation_to_pos import ReservationConfirmed
from handoff.workers.inbox.correction import FIELD_PREFIX, form_fields, read_correction
from tests.runtime import payloads


def test_the_form_has_one_input_per_field_filled_with_the_payload_in_the_models_order() -> None:
    """Entities are not inputs, their fields are; numbers, yes/no and lists get their own widgets."""
    payload = ReservationConfirmed.model_validate(payloads.reservation()).model_dump(mode="json")

    fields = {field.path: (field.widget, field.text) for field in form_fields(ReservationConfirmed, payload)}

    assert ("reservation.id", "reservation.party_size") == tuple(fields)[:2]
    assert "reservation" not in fields and "guest" not in fields
    assert ("number", "4") == fields["reservation.party_size"]
    assert ("yes-no", "true") == fields["guest.marketing_opt_in"]
    assert ("text", "2026-12-04T19:30:00Z") == fields["reservation.starts_at"]


def test_only_the_changed_inputs_become_the_patch_with_the_models_types() -> None:
    """'4' typed into a number field is sent as 4; an emptied optional field as None; untouched fields not at all."""
    payload = payloads.reservation(reservation__party_size=14)
    form = {FIELD_PREFIX + "reservation.party_size": " 4 ", FIELD_PREFIX + "reservation.notes": ""}

    correction = read_correction(ReservationConfirmed, payload, form)

    assert ({"reservation.party_size": 4, "reservation.notes": None}, {}) == (correction.patch, correction.problems)


def test_a_value_the_model_refuses_is_a_problem_beside_its_field_in_pydantics_words() -> None:
    """Nothing is sent; the problem names the field; the form keeps what was typed."""
    payload = payloads.reservation(reservation__party_size=14)

    correction = read_correction(ReservationConfirmed, payload, {FIELD_PREFIX + "reservation.party_size": "four"})

    assert {} == correction.patch
    assert {
        "reservation.party_size": "Input should be a valid integer, unable to parse string as an integer"
    } == correction.problems
    assert "four" == next(f.text for f in correction.fields if f.path == "reservation.party_size")


def test_a_list_is_edited_as_json_and_a_problem_inside_it_is_shown_beside_the_list() -> None:
    """Bad JSON is named as such; a bad item (quantity 0) is reported on the list's input, in pydantic's words."""
    payload = payloads.order()
    items = [dict(item) for item in payload["order"]["items"]]
    items[0]["quantity"] = 0

    not_json = read_correction(OrderPlaced, payload, {FIELD_PREFIX + "order.items": "[{"})
    bad_item = read_correction(OrderPlaced, payload, {FIELD_PREFIX + "order.items": json.dumps(items)})
    fixed = read_correction(OrderPlaced, payload, {FIELD_PREFIX + "order.items": json.dumps(items[1:])})

    assert not_json.problems["order.items"].startswith("Not valid JSON:")
    assert {"order.items": "Input should be greater than or equal to 1"} == bad_item.problems
    assert {"order.items": items[1:]} == fixed.patch


def test_a_correction_that_changes_nothing_asks_for_a_change() -> None:
    """Sending the form as it was shown is not a correction."""
    payload = ReservationConfirmed.model_validate(payloads.reservation()).model_dump(mode="json")
    shown = {FIELD_PREFIX + field.path: field.text for field in form_fields(ReservationConfirmed, payload)}

    correction = read_correction(ReservationConfirmed, payload, shown)

    assert ({}, {"": "Change at least one field to correct the case."}) == (correction.patch, correction.problems)
