"""What the gate knows about a payload model: its field paths, their value kinds, and its entities.

Every other check reads the payload through this one description, so "is `guest.allergies` a field?", "is
`reservation.party_size` a number?" and "which top-level fields are entities?" are answered the same way everywhere.
Kinds describe the values `model.model_dump()` produces, because that is what the rule evaluator reads.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo


class ValueKind(StrEnum):
    """The kind of a present value, as far as the rules care: what it can be compared with and matched against."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    STR = "str"
    DATE = "date"
    DATETIME = "datetime"
    TIME = "time"
    TIMEDELTA = "timedelta"
    COLLECTION = "collection"
    MODEL = "model"
    ANY = "any"
    """A type the gate cannot read (Any, a dict, a custom class): every rule is given the benefit of the doubt."""


NUMERIC_KINDS = frozenset({ValueKind.INT, ValueKind.FLOAT, ValueKind.BOOL})
UNKNOWN = frozenset({ValueKind.ANY})

_MAX_DEPTH = 8
"""Nested models deeper than this are read as opaque; it also stops self-referencing models."""


@dataclass(frozen=True)
class FieldShape:
    """One field path of the payload."""

    path: str
    kinds: frozenset[ValueKind]
    always_present: bool
    """True when every valid event must carry a value here: required, not nullable, on every step of the path."""
    never_empty: bool = False
    """True when the value can never be absent, even by default: not nullable on any step, and of a kind that has
    no empty value (a number, a yes/no, a date). `Forbidden` fails every event on such a field."""
    max_length: int | None = None
    """The model's own limit on a text's length (`Field(max_length=...)`): longer values never pass the edge."""
    minimum: float | None = None
    """The model's own lower bound on a number (`ge`, `gt`)."""
    maximum: float | None = None
    """The model's own upper bound on a number (`le`, `lt`)."""


@dataclass(frozen=True)
class PayloadShape:
    """Every field path of a payload model, and which top-level fields are entities."""

    model_name: str
    fields: Mapping[str, FieldShape]
    entities: tuple[str, ...]
    opaque: tuple[str, ...] = ()
    """Paths whose insides the gate cannot see (a dict, Any): any path below them is accepted."""

    def has(self, path: str) -> bool:
        """Whether the payload model has this `entity.field` path."""
        if path in self.fields:
            return True
        return any(path.startswith(prefix + ".") for prefix in self.opaque)

    def kinds_of(self, path: str) -> frozenset[ValueKind]:
        """The kinds a present value at `path` can have; ANY for a path the model does not describe."""
        shape = self.fields.get(path)
        return shape.kinds if shape is not None else UNKNOWN


UNKNOWN_PAYLOAD = PayloadShape(model_name="(no payload)", fields={}, entities=())
"""For a contract without a trigger: every field reads as ANY, and unknown fields are not looked for."""


def shape_of(model: type[BaseModel]) -> PayloadShape:
    """Read a payload model into its field paths, value kinds and entities."""
    fields: dict[str, FieldShape] = {}
    opaque: list[str] = []
    entities: list[str] = []
    for name, info in model.model_fields.items():
        reading = _add_field(fields, opaque, name, info, parent_required=True, parent_never_none=True, depth=1)
        if reading.model is not None:
            entities.append(name)
    return PayloadShape(model_name=model.__qualname__, fields=fields, entities=tuple(entities), opaque=tuple(opaque))


_NEVER_EMPTY_KINDS = frozenset(
    {
        ValueKind.INT,
        ValueKind.FLOAT,
        ValueKind.BOOL,
        ValueKind.DATE,
        ValueKind.DATETIME,
        ValueKind.TIME,
        ValueKind.TIMEDELTA,
    }
)


def _add_field(
    fields: dict[str, FieldShape],
    opaque: list[str],
    path: str,
    info: FieldInfo,
    *,
    parent_required: bool,
    parent_never_none: bool,
    depth: int,
) -> _AnnotationReading:
    reading = _read_annotation(info.annotation)
    required = parent_required and info.is_required() and not reading.nullable
    never_none = parent_never_none and not reading.nullable and info.default is not None
    never_empty = never_none and bool(reading.kinds) and reading.kinds <= _NEVER_EMPTY_KINDS
    fields[path] = FieldShape(
        path=path,
        kinds=reading.kinds,
        always_present=required,
        never_empty=never_empty,
        **_constraints(info),
    )
    if reading.model is not None and depth < _MAX_DEPTH:
        for name, child in reading.model.model_fields.items():
            _add_field(
                fields,
                opaque,
                f"{path}.{name}",
                child,
                parent_required=required,
                parent_never_none=never_none,
                depth=depth + 1,
            )
    elif reading.model is not None or ValueKind.ANY in reading.kinds:
        opaque.append(path)
    return reading


def _constraints(info: FieldInfo) -> dict[str, Any]:
    """The length and range limits pydantic enforces on this field (its `annotated_types` metadata)."""
    found: dict[str, Any] = {}
    for item in info.metadata:
        if isinstance(item, annotated_types.MaxLen):
            found["max_length"] = item.max_length
        elif isinstance(item, annotated_types.Ge | annotated_types.Gt):
            found["minimum"] = item.ge if isinstance(item, annotated_types.Ge) else item.gt
        elif isinstance(item, annotated_types.Le | annotated_types.Lt):
            found["maximum"] = item.le if isinstance(item, annotated_types.Le) else item.lt
        elif getattr(item, "max_length", None) is not None:  # pydantic's StringConstraints
            found["max_length"] = item.max_length
    return found


@dataclass(frozen=True)
class _AnnotationReading:
    kinds: frozenset[ValueKind]
    nullable: bool = False
    model: type[BaseModel] | None = None


_SIMPLE_KINDS: tuple[tuple[type, ValueKind], ...] = (
    # Order matters: bool is an int, datetime is a date, a StrEnum is a str.
    (bool, ValueKind.BOOL),
    (int, ValueKind.INT),
    (float, ValueKind.FLOAT),
    (Decimal, ValueKind.FLOAT),
    (str, ValueKind.STR),
    (datetime, ValueKind.DATETIME),
    (date, ValueKind.DATE),
    (time, ValueKind.TIME),
    (timedelta, ValueKind.TIMEDELTA),
)

_COLLECTIONS: tuple[type, ...] = (list, tuple, set, frozenset)


def _read_annotation(annotation: Any) -> _AnnotationReading:
    try:
        return _read_hashable_annotation(annotation)
    except TypeError:  # an annotation carrying unhashable metadata: read it without the cache
        return _read_any_annotation(annotation)


@functools.lru_cache(maxsize=4096)
def _read_hashable_annotation(annotation: Any) -> _AnnotationReading:
    # Catalogs repeat the same few annotations (`int | None`, `str`) thousands of times; reading is pure.
    return _read_any_annotation(annotation)


def _read_any_annotation(annotation: Any) -> _AnnotationReading:
    if annotation is None or annotation is type(None):
        return _AnnotationReading(kinds=frozenset(), nullable=True)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _read_annotation(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return _read_union(typing.get_args(annotation))
    if origin is typing.Literal:
        return _read_union(tuple(type(value) if value is not None else None for value in typing.get_args(annotation)))
    if origin is not None:
        is_collection = isinstance(origin, type) and issubclass(origin, _COLLECTIONS)
        return _AnnotationReading(kinds=frozenset({ValueKind.COLLECTION}) if is_collection else UNKNOWN)
    if not isinstance(annotation, type):
        return _AnnotationReading(kinds=UNKNOWN)
    if issubclass(annotation, BaseModel):
        return _AnnotationReading(kinds=frozenset({ValueKind.MODEL}), model=annotation)
    if issubclass(annotation, Enum) and not issubclass(annotation, int | str):
        return _AnnotationReading(kinds=UNKNOWN)
    for python_type, kind in _SIMPLE_KINDS:
        if issubclass(annotation, python_type):
            return _AnnotationReading(kinds=frozenset({kind}))
    if issubclass(annotation, _COLLECTIONS):
        return _AnnotationReading(kinds=frozenset({ValueKind.COLLECTION}))
    # A dict, a dataclass, a custom or pydantic-special type: the gate cannot tell what its values look like.
    return _AnnotationReading(kinds=UNKNOWN)


def _read_union(members: tuple[Any, ...]) -> _AnnotationReading:
    readings = [_read_annotation(member) for member in members]
    kinds = frozenset().union(*(reading.kinds for reading in readings))
    models = {reading.model for reading in readings if reading.model is not None}
    model = next(iter(models)) if len(models) == 1 else None
    if len(models) > 1:  # several models in one union: their paths cannot be told apart
        kinds = kinds | UNKNOWN
    return _AnnotationReading(kinds=kinds, nullable=any(reading.nullable for reading in readings), model=model)
