"""Field paths that the payload model does not have: a typo in a rule or a sync is a rule that silently never runs.

`value_at` reads a missing path as an absent value, so `Required(reservaton.party_size)` would fail every event and
`Max(reservaton.party_size, 12)` would pass every event; a sync of a missing field writes nothing. Every path a
contract names is looked up in the payload model: rule fields (inside `When`s too, both sides of a `Compare`, the
field of a `Lookup`), synced fields, rename keys, local fields, the entities of `source_of_truth`, and the
`personal` marks: a misspelt personal path would leave the real field unmasked in every read.
"""

from __future__ import annotations

import difflib

from handoff.schemas.contract import HandoffContract
from handoff.schemas.findings import Finding, FindingKind
from handoff.schemas.rule_tree import PlacedRule, every_rule
from handoff.schemas.rules import When
from handoff.workflows.readiness.payload import PayloadShape


def unknown_fields(contract: HandoffContract, shape: PayloadShape) -> list[Finding]:
    """One finding per path the payload model lacks, listing every place the contract names it."""
    named_in: dict[str, list[str]] = {}

    def name(path: str, place: str | PlacedRule) -> None:
        if not shape.has(path):
            places = named_in.setdefault(path, [])
            where = place if isinstance(place, str) else place.where()  # formatted only for the rare unknown path
            if where not in places:
                places.append(where)

    for entity in contract.source_of_truth:
        name(entity, "source_of_truth")
    for placed in every_rule(contract.rules):
        if not isinstance(placed.rule, When):  # a When's fields are those of the rules inside it, walked next
            for path in placed.rule.fields:
                name(path, placed)
    if contract.sync is not None:
        for target in contract.sync.targets:
            for path in target.fields:
                name(path, f"the sync to '{target.system}'")
            for path in target.rename:
                name(path, f"a rename in the sync to '{target.system}'")
        for path in contract.sync.local:
            name(path, "the local fields of the sync")
    for path in contract.personal:
        name(path, "the personal fields")
    four_eyes = contract.exceptions.four_eyes if contract.exceptions is not None else None
    if four_eyes is not None and four_eyes.when is not None:
        for placed in every_rule([four_eyes.when]):
            if not isinstance(placed.rule, When):
                for path in placed.rule.fields:
                    name(path, "the four-eyes condition")
    return [_finding(contract, shape, path, places) for path, places in named_in.items()]


def _finding(contract: HandoffContract, shape: PayloadShape, path: str, places: list[str]) -> Finding:
    close = difflib.get_close_matches(path, list(shape.fields), n=1)
    if close:
        hint = f" Did you mean '{close[0]}'?"
    elif shape.entities:
        hint = f" The payload's entities are: {', '.join(shape.entities)}."
    else:
        hint = ""
    return Finding(
        kind=FindingKind.UNKNOWN_FIELD,
        contract=contract.name,
        subject=path,
        message=(
            f"{contract.name}: '{path}' is not a field of the payload model {shape.model_name}, but "
            f"{'; '.join(places)} names it, so that part of the contract would never see a value. Which field is "
            f"meant? Write it as an `entity.field` path of the payload.{hint}"
        ),
    )
