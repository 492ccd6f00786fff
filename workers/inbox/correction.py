"""The correction form: the payload's fields as inputs, and the posted inputs back into a patch the run will take.

The form has one input per field of the trigger's payload model (`entity.field`, read with the readiness gate's
`shape_of`, so the form and the workflow agree on what a field is), filled with the case's payload. Only the inputs
the operator changed become the patch. Before anything is sent, the payload with the patch applied is checked
against the payload model, as the workflow will check it (`workflows/refusals.py`), so a typo is shown next to its
field in pydantic's words, the same words the edge uses for an event (`handoff.workers.trigger.field_errors`), and
no refused attempt lands in the case's history. The patch holds the values as the model reads them (`"4"` typed
into a number field is sent as 4).

Inputs are text: an emptied input means "no value" (None), which the model refuses where a field must have one.
A list or a free-form value (a dict, Any) is edited as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from handoff.schemas.paths import patched, value_at
from handoff.workers.trigger import field_errors
from handoff.workflows.readiness.payload import ValueKind, shape_of

FIELD_PREFIX = "set:"
"""Form inputs of payload fields are named `set:<entity.field>`."""

_JSON_KINDS = frozenset({ValueKind.COLLECTION, ValueKind.ANY, ValueKind.MODEL})
_NUMBER_KINDS = frozenset({ValueKind.INT, ValueKind.FLOAT})


@dataclass(frozen=True)
class FormField:
    """One input of the correction form."""

    path: str
    text: str
    """What the input shows: the current value as text ('' for none), or what the operator typed."""
    widget: str
    """'text', 'number', 'yes-no' or 'json'."""


@dataclass(frozen=True)
class Correction:
    """What a posted correction form amounts to: the patch to send, or the problems to show beside their fields."""

    patch: dict[str, Any]
    problems: dict[str, str]
    fields: list[FormField]
    """The form as posted, to show again when there are problems."""


def form_fields(model: type[BaseModel], payload: Mapping[str, Any]) -> list[FormField]:
    """The inputs for every editable field of the model, filled with the payload's values, in the model's order."""
    shape = shape_of(model)
    editable = [
        path
        for path, field in shape.fields.items()
        if ValueKind.MODEL not in field.kinds or path in shape.opaque  # an entity's fields are edited, not the entity
    ]
    return [
        FormField(path=path, text=_as_text(value_at(payload, path)), widget=_widget(shape.kinds_of(path)))
        for path in editable
    ]


def read_correction(model: type[BaseModel], payload: Mapping[str, Any], form: Mapping[str, Any]) -> Correction:
    """The patch of the inputs that changed, checked against the model with the payload; problems by field path."""
    shown = {field.path: field for field in form_fields(model, payload)}
    posted: list[FormField] = []
    raw: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for path, field in shown.items():
        sent = form.get(FIELD_PREFIX + path)
        text = field.text if not isinstance(sent, str) else sent.replace("\r\n", "\n")
        posted.append(FormField(path=path, text=text, widget=field.widget))
        if text.strip() == field.text.strip():
            continue
        try:
            raw[path] = _from_text(text, field.widget)
        except ValueError as error:
            problems[path] = str(error)
    if problems:
        return Correction(patch={}, problems=problems, fields=posted)
    if not raw:
        return Correction(patch={}, problems={"": "Change at least one field to correct the case."}, fields=posted)
    try:
        checked = model.model_validate(patched(payload, raw)).model_dump(mode="json")
    except ValidationError as error:
        for problem in field_errors(error):
            problems.setdefault(_nearest(problem.field, shown), problem.message)
        return Correction(patch={}, problems=problems, fields=posted)
    return Correction(patch={path: value_at(checked, path) for path in raw}, problems={}, fields=posted)


def _nearest(path: str, shown: Mapping[str, FormField]) -> str:
    """The input a problem at `path` belongs beside: the field itself, else the input holding it (a list item is
    in its list's JSON input), else '' for the form as a whole."""
    while path and path not in shown:
        path = path.rpartition(".")[0]
    return path


def _widget(kinds: frozenset[ValueKind]) -> str:
    if kinds & _JSON_KINDS:
        return "json"
    if kinds == {ValueKind.BOOL}:
        return "yes-no"
    if kinds and kinds <= _NUMBER_KINDS:
        return "number"
    return "text"


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _from_text(text: str, widget: str) -> Any:
    """The value an input stands for: None when emptied, parsed JSON for a JSON input, else the text itself (the
    model converts it: '4' to 4, 'true' to True, an ISO time to a datetime)."""
    if not text.strip():
        return None
    if widget == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"Not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}.") from None
    return text.strip() if widget in ("number", "yes-no") else text
