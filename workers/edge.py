"""What the edge refuses before anything starts, beyond the payload model: what no run could carry to its end.

A payload that passes here is exactly what the workflow receives, so nothing fails later for a reason that was
visible at the door:
- JSON nested deeper than `MAX_DEPTH`, or not JSON at all (`NaN` and `Infinity` are not JSON);
- numbers no run could carry: non-finite floats, integers outside 64 bits (the range SQL columns and most APIs
  hold);
- text that cannot be encoded (a lone surrogate such as "\\ud800") or holds a NUL character (no database stores it);
- a dedupe key that cannot name a run: empty, blank, padded with spaces, longer than `MAX_KEY_LENGTH`, or holding
  `/` (it separates the handoff from the key in the workflow id) or control characters.

Each problem is a `FieldError` naming the field, so the API answers 422 and the CLI exits 2, with the same words.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from handoff.schemas.contract import MAX_DEDUPE_KEY_LENGTH
from handoff.schemas.runs import FieldError

MAX_DEPTH = 32
"""How deeply a payload may nest objects and arrays: entities with a few levels of detail need far less."""
MAX_KEY_LENGTH = MAX_DEDUPE_KEY_LENGTH
INT64 = 2**63
_TOO_DEEP = f"the JSON is nested too deeply (at most {MAX_DEPTH} levels)"


class NotJson(ValueError):
    """The body is not JSON an event can be: the reason, for the caller."""


def parse_event_body(body: str | bytes) -> Any:
    """The JSON value of an event's body; `NotJson` saying why when it is not one (NaN, too deep, malformed)."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise NotJson(_TOO_DEEP) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise NotJson(unparsable_reason(error)) from None
    if _depth(value) > MAX_DEPTH:
        raise NotJson(_TOO_DEEP)
    return value


def unparsable_reason(error: BaseException) -> str:
    """Why the JSON parser gave up on a body, in words a sender can act on.

    Shared with the API's answer to the other bodies it reads (a decision), which FastAPI parses itself: the same
    fault reads the same on every route.
    """
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno}, column {error.colno}"
    if isinstance(error, UnicodeDecodeError):
        return f"the body is not UTF-8: {error.reason}"
    if isinstance(error, RecursionError):
        return "the JSON is nested too deeply"
    return f"{type(error).__name__}: {error}"


def value_problems(payload: Mapping[str, Any]) -> list[FieldError]:
    """Every value of the payload that no run could carry, by field path."""
    return [
        FieldError(field=path or "(payload)", message=message, type=kind) for path, message, kind in _walk(payload, "")
    ]


def dedupe_key_problem(field: str, key: str) -> FieldError | None:
    """Why `key` cannot name a run, or None when it can."""
    reason = None
    if not key.strip():
        reason = "is empty or blank"
    elif key != key.strip():
        reason = "starts or ends with spaces"
    elif len(key) > MAX_KEY_LENGTH:
        reason = f"is {len(key)} characters long; at most {MAX_KEY_LENGTH}"
    elif "/" in key:
        reason = "holds '/', which separates the handoff from the key in the run's id"
    elif any(ord(character) < 32 or ord(character) == 127 for character in key):
        reason = "holds control characters"
    if reason is None:
        return None
    return FieldError(field=field, message=f"the dedupe key {reason}: it cannot name a run", type="dedupe_key")


def _refuse_constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON number: send a number, or leave the field out")


def _depth(value: Any) -> int:
    # Iterative: a payload just under the parser's recursion limit must not overflow this check either.
    deepest, stack = 0, [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            deepest = max(deepest, depth)
            children = current.values() if isinstance(current, dict) else current
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _walk(value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from _walk(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            yield from _walk(child, f"{path}.{index}")
    elif isinstance(value, bool):
        return
    elif isinstance(value, float) and not math.isfinite(value):
        yield path, f"{value} is not a number a run can carry", "number"
    elif isinstance(value, int) and not -INT64 <= value < INT64:
        yield path, "the integer is outside the 64-bit range (about ±9.2e18)", "number"
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            yield path, "the text holds a lone surrogate (an unpaired \\ud800-\\udfff): it cannot be encoded", "text"
            return
        if "\x00" in value:
            yield path, "the text holds a NUL character (\\u0000), which no database stores", "text"
