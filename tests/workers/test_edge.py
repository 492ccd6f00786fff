"""The edge's own refusals, before the payload model: what no run could carry is named by field, nothing starts."""

from __future__ import annotations

import json

import pytest

from examples.restaurant import app as restaurant
from handoff.workers.edge import (
    MAX_DEPTH,
    NotJson,
    dedupe_key_problem,
    parse_event_body,
    unparsable_reason,
    value_problems,
)
from handoff.workers.trigger import PayloadInvalid, checked_payload
from tests.runtime import payloads

RESERVATION = restaurant.catalog.for_event("reservation.confirmed")


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ("[" * 10_000 + "]" * 10_000, "nested too deeply"),
        (json.dumps(json.loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))), "nested too deeply"),
        ("{not json", "Expecting property name"),
        (b'{"a": "\xff"}', "not UTF-8"),
    ],
)
def test_bodies_that_are_no_event_are_refused_with_the_reason(body: str | bytes, complaint: str) -> None:
    with pytest.raises(NotJson, match=complaint):
        parse_event_body(body)


def test_a_body_just_deep_enough_is_read() -> None:
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert json.loads(nested) == parse_event_body(nested)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (float("nan"), "number"),
        (float("inf"), "number"),
        (10**30, "number"),
        (-(2**63) - 1, "number"),
        ("\ud800", "text"),
        ("Ada\x00Lovelace", "text"),
    ],
)
def test_values_no_run_could_carry_are_named_by_field(value: object, kind: str) -> None:
    problems = value_problems({"guest": {"name": "Ada", "tags": ["vip", value]}})

    assert [("guest.tags.1", kind)] == [(p.field, p.type) for p in problems]


def test_values_a_run_can_carry_pass() -> None:
    assert [] == value_problems(
        {"deal": {"amount": 2**63 - 1, "rate": 0.5, "ok": True, "name": "Zoë 🍕", "lines": [{"n": -(2**63)}]}}
    )


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty or blank"),
        ("   ", "empty or blank"),
        (" R-1", "starts or ends with spaces"),
        ("x" * 201, "201 characters long"),
        ("../../etc/passwd", "holds '/'"),
        ("R-1\x00", "control characters"),
        ("R\n1", "control characters"),
    ],
)
def test_dedupe_keys_that_cannot_name_a_run(key: str, reason: str) -> None:
    problem = dedupe_key_problem("reservation.id", key)

    assert problem is not None and reason in problem.message and "reservation.id" == problem.field


@pytest.mark.parametrize("key", ["R-1", "deal 42", "O-2026-11-29#7", "ÆØÅ-1", "x" * 200])
def test_ordinary_keys_name_runs(key: str) -> None:
    assert None is dedupe_key_problem("reservation.id", key)


def test_the_trigger_check_refuses_a_bad_key_and_an_unencodable_name_together_with_the_model() -> None:
    bad_key = payloads.reservation(reservation__id="../../etc/passwd")
    bad_name = payloads.reservation()
    bad_name["guest"]["name"] = "\ud800"

    with pytest.raises(PayloadInvalid) as key_refused:
        checked_payload(RESERVATION, "reservation.confirmed", bad_key)
    with pytest.raises(PayloadInvalid) as name_refused:
        checked_payload(RESERVATION, "reservation.confirmed", bad_name)

    assert ["reservation.id"] == [e.field for e in key_refused.value.errors]
    assert ["guest.name"] == [e.field for e in name_refused.value.errors]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"a": "\xff"}', "the body is not UTF-8: invalid start byte"),
        (b"[" * 5000 + b"]" * 5000, "the JSON is nested too deeply"),
        (b'{"a": }', "Expecting value at line 1, column 7"),
    ],
)
def test_why_a_body_is_no_json_reads_the_same_wherever_it_is_parsed(raw: bytes, reason: str) -> None:
    """The words for the parser's failure, which the API also gives for a decision's body that FastAPI parsed."""
    with pytest.raises((ValueError, RecursionError)) as failure:
        json.loads(raw)

    assert reason == unparsable_reason(failure.value)
