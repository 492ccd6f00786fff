"""How the gate reads a payload model: entities, field paths, value kinds, and which fields every event carries."""

from __future__ import annotations

from decimal import Decimal
from enum import Enum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from handoff.workflows.readiness.payload import ValueKind, shape_of


class Colour(StrEnum):
    RED = "red"


class Size(Enum):
    SMALL = 1


class Inner(BaseModel):
    code: str


class Item(BaseModel):
    id: str
    count: Annotated[int, Field(ge=0)] | None = None
    price: Decimal = Decimal(0)
    colour: Colour | None = None
    size: Size | None = None
    status: Literal["open", "closed"] = "open"
    extra: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    inner: Inner | None = None


class Event(BaseModel):
    item: Item
    maybe: Inner | None = None
    source: str = "web"


SHAPE = shape_of(Event)


def test_entities_are_top_level_models_optional_or_not() -> None:
    """Top-level model fields (also Optional ones) are entities; a top-level text is not."""
    assert ("item", "maybe") == SHAPE.entities


def test_kinds_follow_the_dumped_values() -> None:
    """Annotated and Optional are seen through; Decimal is a number, a StrEnum and a Literal of texts are texts."""
    expected = {
        "item.count": {ValueKind.INT},
        "item.price": {ValueKind.FLOAT},
        "item.colour": {ValueKind.STR},
        "item.status": {ValueKind.STR},
        "item.tags": {ValueKind.COLLECTION},
        "item.inner": {ValueKind.MODEL},
        "item.size": {ValueKind.ANY},
    }
    assert expected == {path: set(SHAPE.kinds_of(path)) for path in expected}


def test_nested_models_are_walked_and_dicts_are_open() -> None:
    """Paths go through nested models; anything below a dict is accepted, anything below a list is not."""
    known = ["item.inner.code", "maybe.code", "item.extra.anything", "source"]
    unknown = ["item.inner.name", "item.tags.first", "item.id.length", "other"]

    assert ([True] * 4, [False] * 4) == ([SHAPE.has(p) for p in known], [SHAPE.has(p) for p in unknown])


def test_always_present_needs_every_step_required_and_not_optional() -> None:
    """item.id is on every event; maybe.code is not (its entity is optional), nor are defaulted fields."""
    expected = {"item.id": True, "item.inner.code": False, "maybe.code": False, "item.price": False}
    assert expected == {path: SHAPE.fields[path].always_present for path in expected}


def test_never_empty_means_no_none_on_the_path_and_a_kind_without_an_empty_value() -> None:
    """A defaulted number is never empty; an optional one, a text (which may be ''), or one below an optional
    entity may be."""
    expected = {"item.price": True, "item.count": False, "item.id": False, "maybe.code": False}
    assert expected == {path: SHAPE.fields[path].never_empty for path in expected}
