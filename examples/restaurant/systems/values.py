"""Turn the JSON values delivery sends into what a system's column stores, or refuse them in words.

Field values cross Temporal as JSON: datetimes arrive as ISO strings, nested models as dicts. A real system's API
would parse and validate them; the demo systems do the same here, so a wrong value fails the same way on SQLite and
PostgreSQL, and names the field.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Date, Float, Integer, String

from examples.restaurant.systems.tables import UtcDateTime
from handoff import InvalidFieldValue, TargetField

INT32 = (-(2**31), 2**31 - 1)
"""What an INTEGER column holds on PostgreSQL (SQLite holds more): the demo systems keep to the smaller."""


def accepted(column: Column[Any]) -> TargetField:
    """What a column holds, as the readiness gate reads it: the same limits `to_column` enforces."""
    kind = column.type
    if isinstance(kind, UtcDateTime):
        return TargetField.datetime()
    if isinstance(kind, Date):
        return TargetField.date()
    if isinstance(kind, JSON):
        return TargetField.json_value()
    if isinstance(kind, Boolean):
        return TargetField.boolean()
    if isinstance(kind, Integer):
        return TargetField.integer(*INT32)
    if isinstance(kind, Float):
        return TargetField.number()
    if isinstance(kind, String):
        return TargetField.text(max_length=kind.length)
    raise TypeError(f"{column.name}: no conversion for column type {kind!r}")  # a table was declared wrongly


def to_column(system: str, column: Column[Any], value: Any) -> Any:
    """`value` as `column` stores it; `InvalidFieldValue` when it cannot hold it."""
    if value is None:
        return None
    field = column.name
    kind = column.type
    if isinstance(kind, UtcDateTime):
        return _to_datetime(system, field, value)
    if isinstance(kind, Date):
        return _to_date(system, field, value)
    if isinstance(kind, JSON):
        return _to_json(system, field, value)
    if isinstance(kind, Boolean):
        if isinstance(value, bool):
            return value
        raise InvalidFieldValue(system, field, value, "true or false")
    if isinstance(kind, Integer):
        whole = value if isinstance(value, int) and not isinstance(value, bool) else None
        if isinstance(value, float) and value.is_integer():
            whole = int(value)
        if whole is None:
            raise InvalidFieldValue(system, field, value, "a whole number")
        if not INT32[0] <= whole <= INT32[1]:
            # An INTEGER column on PostgreSQL holds 32 bits: refused here in words, not as a driver error retried.
            raise InvalidFieldValue(system, field, value, f"a whole number from {INT32[0]} to {INT32[1]}")
        return whole
    if isinstance(kind, Float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise InvalidFieldValue(system, field, value, "a number")
    if isinstance(kind, String):
        if not isinstance(value, str):
            raise InvalidFieldValue(system, field, value, "text")
        if kind.length is not None and len(value) > kind.length:
            raise InvalidFieldValue(system, field, value, f"text of at most {kind.length} characters")
        return value
    raise TypeError(f"{system}.{field}: no conversion for column type {kind!r}")  # a table was declared wrongly


def _to_datetime(system: str, field: str, value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidFieldValue(system, field, value, "an ISO 8601 date and time, e.g. '2026-11-27T19:30:00+00:00'")


def _to_date(system: str, field: str, value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidFieldValue(system, field, value, "an ISO 8601 date, e.g. '2026-11-27'")


def _to_json(system: str, field: str, value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise InvalidFieldValue(
            system, field, value, "JSON values (lists, dicts, text, numbers); dump models with mode='json'"
        ) from None
    return value
