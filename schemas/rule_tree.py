"""Every rule of a contract, including those inside `When`s, with the place it sits in.

Checks that look at single rules (unknown fields, unknown look-ups, rules of the wrong type) must see the condition
and the consequence of a `When` too, and say where they found them: "in the condition of 'deposit for parties'".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from handoff.schemas.rules import Rule, When


@dataclass(frozen=True)
class PlacedRule:
    """A rule and where it sits in the contract."""

    rule: Rule
    place: str
    """'' for a rule of the contract itself, else e.g. "the condition of rule 'if a then b'"."""

    def where(self) -> str:
        """`rule 'x'`, or `rule 'x' (the condition of rule 'y')`, for messages."""
        suffix = f" ({self.place})" if self.place else ""
        return f"rule '{self.rule.label}'{suffix}"


def every_rule(rules: Iterable[Rule]) -> Iterator[PlacedRule]:
    """Each rule, then the rules inside it (a `When`'s condition and consequence), depth first."""
    for rule in rules:
        yield from _walk(rule, place="")


def _walk(rule: Rule, place: str) -> Iterator[PlacedRule]:
    yield PlacedRule(rule=rule, place=place)
    if isinstance(rule, When):
        yield from _walk(rule.condition, place=f"the condition of rule '{rule.label}'")
        yield from _walk(rule.then, place=f"the consequence of rule '{rule.label}'")
