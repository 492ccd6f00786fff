"""What a target system accepts, field by field: the adapter's side of a sync, written down like the contract's.

A POS column holds 255 characters; an invoicing API takes amounts up to a billion cents. Without saying so, a
longer name or a larger amount passes every rule and is refused at delivery. An adapter that declares its fields
(`accepts`, a mapping of field name to `TargetField`) lets the readiness gate compare each synced field with what
the payload model and the contract's rules allow: a value the target could not hold must be stopped by a rule (or
by the model) first, so it becomes a violation at validation, with a reason a person can act on.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class FieldKind(StrEnum):
    """The kinds of value a target field takes, as its JSON arrives."""

    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    JSON = "json"
    """Anything JSON can carry: lists, objects. Not checked further."""


INT32 = (-(2**31), 2**31 - 1)
"""The range of a 32-bit integer column (PostgreSQL's `integer`): the portable choice for counts and cents."""
INT64 = (-(2**63), 2**63 - 1)
"""The range of a 64-bit integer column (`bigint`, SQLite's INTEGER)."""


class TargetField(BaseModel):
    """One field a target system accepts: its kind, and the length or range it can hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FieldKind
    max_length: int | None = Field(default=None, ge=0, description="For text: the most characters it holds.")
    minimum: float | None = Field(default=None, description="For numbers: the smallest value it holds.")
    maximum: float | None = Field(default=None, description="For numbers: the largest value it holds.")

    @classmethod
    def text(cls, max_length: int | None = None) -> TargetField:
        return cls(kind=FieldKind.TEXT, max_length=max_length)

    @classmethod
    def integer(cls, minimum: int | None = INT32[0], maximum: int | None = INT32[1]) -> TargetField:
        """A whole number; a 32-bit range unless said otherwise (None: no limit)."""
        return cls(kind=FieldKind.INTEGER, minimum=minimum, maximum=maximum)

    @classmethod
    def number(cls, minimum: float | None = None, maximum: float | None = None) -> TargetField:
        return cls(kind=FieldKind.NUMBER, minimum=minimum, maximum=maximum)

    @classmethod
    def boolean(cls) -> TargetField:
        return cls(kind=FieldKind.BOOLEAN)

    @classmethod
    def date(cls) -> TargetField:
        return cls(kind=FieldKind.DATE)

    @classmethod
    def datetime(cls) -> TargetField:
        return cls(kind=FieldKind.DATETIME)

    @classmethod
    def json_value(cls) -> TargetField:
        """Anything JSON carries (a list of order lines, an object): the gate checks nothing more."""
        return cls(kind=FieldKind.JSON)

    def describe(self) -> str:
        """'text of at most 255 characters', 'a whole number from 0 to 2147483647'."""
        if self.kind is FieldKind.TEXT:
            return "text" if self.max_length is None else f"text of at most {self.max_length} characters"
        noun = {FieldKind.INTEGER: "a whole number", FieldKind.NUMBER: "a number"}.get(self.kind)
        if noun is None:
            return {
                FieldKind.BOOLEAN: "true or false",
                FieldKind.DATE: "a date",
                FieldKind.DATETIME: "a date and time",
            }.get(self.kind, "any JSON value")
        if self.minimum is not None and self.maximum is not None:
            return f"{noun} from {number(self.minimum)} to {number(self.maximum)}"
        if self.minimum is not None:
            return f"{noun} of at least {number(self.minimum)}"
        if self.maximum is not None:
            return f"{noun} of at most {number(self.maximum)}"
        return noun


def number(value: float) -> str:
    """A bound as a person writes it: 2147483647, not 2.14748e+09."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
