"""Rules for bad data: the contract's answer to "what happens when data is incomplete or inconsistent?".

Rules are declarative so that they can be checked before anything runs (the readiness gate looks for rules that
contradict each other) and evaluated deterministically inside a workflow. Checks that need a look-up in another
system are `Lookup` rules: they name a validation activity instead of describing the check.

Every rule names the payload field(s) it reads as an `entity.field` path and carries the `reason` an operator reads
when the rule is violated. Except `Required` and `Forbidden`, which are about presence, a rule only judges a value
that is present: "party size at most 12" says nothing about a missing party size; `Required` does.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Scalar = str | int | float | bool
"""A literal value a rule may compare against."""

ComparisonOperator = Literal["<", "<=", ">", ">=", "==", "!="]


class _RuleBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str = Field(min_length=1, description="What a person reads when this rule is violated.")
    name: str | None = Field(default=None, description="A stable name; derived from the rule when omitted.")

    @property
    def label(self) -> str:
        """The rule's name as findings, violations and the ledger show it."""
        return self.name or self._describe()

    def _describe(self) -> str:  # pragma: no cover - every concrete rule overrides it
        raise NotImplementedError

    @property
    def fields(self) -> tuple[str, ...]:
        """Every payload field path this rule reads."""
        return (self.field,)  # type: ignore[attr-defined]  # every single-field rule has `field`


class Required(_RuleBase):
    """The field must have a value (not null, not an empty string, not an empty list)."""

    kind: Literal["required"] = "required"
    field: str

    def _describe(self) -> str:
        return f"{self.field} is required"


class Forbidden(_RuleBase):
    """The field must be empty: for data that must never travel with this event."""

    kind: Literal["forbidden"] = "forbidden"
    field: str

    def _describe(self) -> str:
        return f"{self.field} is forbidden"


class Min(_RuleBase):
    """A numeric lower bound (inclusive unless `exclusive`)."""

    kind: Literal["min"] = "min"
    field: str
    value: float
    exclusive: bool = False

    def _describe(self) -> str:
        return f"{self.field} {'>' if self.exclusive else '>='} {self.value:g}"


class Max(_RuleBase):
    """A numeric upper bound (inclusive unless `exclusive`)."""

    kind: Literal["max"] = "max"
    field: str
    value: float
    exclusive: bool = False

    def _describe(self) -> str:
        return f"{self.field} {'<' if self.exclusive else '<='} {self.value:g}"


class OneOf(_RuleBase):
    """The value must be one of a closed set."""

    kind: Literal["one_of"] = "one_of"
    field: str
    values: tuple[Scalar, ...] = Field(min_length=1)

    def _describe(self) -> str:
        return f"{self.field} in {{{', '.join(map(str, self.values))}}}"


class Pattern(_RuleBase):
    """The text value must match a regular expression (matched in full)."""

    kind: Literal["pattern"] = "pattern"
    field: str
    regex: str

    def _describe(self) -> str:
        return f"{self.field} matches /{self.regex}/"


class MaxLength(_RuleBase):
    """A text of at most `value` characters (a list of at most `value` items): what a target's column can hold."""

    kind: Literal["max_length"] = "max_length"
    field: str
    value: int = Field(ge=0)

    def _describe(self) -> str:
        return f"len({self.field}) <= {self.value}"


class Compare(_RuleBase):
    """A comparison of two fields of the payload, such as `stay.check_out > stay.check_in`."""

    kind: Literal["compare"] = "compare"
    left: str
    op: ComparisonOperator
    right: str

    def _describe(self) -> str:
        return f"{self.left} {self.op} {self.right}"

    @property
    def fields(self) -> tuple[str, ...]:
        return (self.left, self.right)


class When(_RuleBase):
    """A conditional rule: "if `condition` holds, `then` must hold".

    The condition is a rule read as a predicate. A value rule (min, max, max-length, one-of, pattern, compare) holds as a
    condition only when its field has a value, so `When(OneOf(fulfilment, ["delivery"]), Required(address))` asks
    for an address only for deliveries.
    """

    kind: Literal["when"] = "when"
    condition: Rule
    then: Rule

    def _describe(self) -> str:
        return f"if {self.condition.label} then {self.then.label}"

    @property
    def fields(self) -> tuple[str, ...]:
        return (*self.condition.fields, *self.then.fields)


class Lookup(_RuleBase):
    """A check that needs another system, done by the named validation activity ("the table exists in the POS")."""

    kind: Literal["lookup"] = "lookup"
    check: str = Field(min_length=1, description="The name of the validation check, e.g. 'pos.table_exists'.")
    field: str

    def _describe(self) -> str:
        return f"{self.check}({self.field})"


Rule = Annotated[
    Required | Forbidden | Min | Max | MaxLength | OneOf | Pattern | Compare | When | Lookup,
    Field(discriminator="kind"),
]
"""Any rule of the contract language."""

When.model_rebuild()
