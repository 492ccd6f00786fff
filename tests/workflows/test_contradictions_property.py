"""The contradiction check agrees with brute force, for random bounds and closed sets on one numeric field.

Rule constants are multiples of 0.5 in [-5, 5]; the brute force tries every multiple of 0.25 in [-7, 7] (every
integer in [-7, 7] for an int field) with the evaluator itself (`workflows.validation.holds`). That grid is fine
enough to be exact: a non-empty interval between two constants holds a point of it (its midpoint, or the constant
itself), an open-ended one holds a point past ±5, and every constant of a closed set is on it.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from handoff.schemas.contract import HandoffContract, Trigger
from handoff.schemas.findings import FindingKind
from handoff.schemas.rules import Max, Min, OneOf, Rule
from handoff.workflows.readiness import check_contract
from handoff.workflows.validation import holds
from tests.workflows.sample_contracts import ready_contract


class IntFigures(BaseModel):
    id: str
    x: int | None = None


class FloatFigures(BaseModel):
    id: str
    x: float | None = None


class IntEvent(BaseModel):
    figures: IntFigures


class FloatEvent(BaseModel):
    figures: FloatFigures


FIELD = "figures.x"
CONSTANTS = [step / 2 for step in range(-10, 11)]
GRIDS = {
    "int": list(range(-7, 8)),
    "float": [step / 4 for step in range(-28, 29)],
}
CLASHES = (FindingKind.CONTRADICTORY_RULES, FindingKind.RULE_TYPE_MISMATCH)


@st.composite
def rule_sets(draw: st.DrawFn) -> list[Rule]:
    """1 to 5 bounds and closed sets on FIELD (half the time bounds only). Constants come from a small pool drawn
    per example (one constant, or neighbours on the grid, or any few), so that rules share or straddle boundaries
    (min 2 exclusive with max 2, min 1.5 exclusive with max 1.9) as often as the clashes worth finding need them to."""
    centre = st.sampled_from(CONSTANTS[1:-1])
    pool = draw(
        st.one_of(
            centre.map(lambda value: [value]),
            centre.map(lambda value: [value, value + 0.5]),
            centre.map(lambda value: [value - 0.5, value, value + 0.5]),
            st.lists(st.sampled_from(CONSTANTS), min_size=1, max_size=3, unique=True),
        )
    )
    constant = st.sampled_from(pool)
    bound = st.builds(
        lambda is_min, value, exclusive: (Min if is_min else Max)(
            field=FIELD, value=value, exclusive=exclusive, reason="bound"
        ),
        st.booleans(),
        constant,
        st.booleans(),
    )
    closed_set = st.builds(
        lambda values: OneOf(field=FIELD, values=tuple(values), reason="closed set"),
        st.lists(constant.map(lambda value: int(value) if value.is_integer() else value), min_size=1, max_size=3),
    )
    return draw(
        st.one_of(
            st.lists(bound, min_size=1, max_size=4),
            st.lists(st.one_of(bound, bound, closed_set), min_size=1, max_size=5),
        )
    )


def passes(rules: Sequence[Rule], value: float) -> bool:
    payload = {"figures": {"id": "1", "x": value}}
    return all(holds(rule, payload) for rule in rules)


def satisfiable_by_brute_force(rules: Sequence[Rule], grid: list[float]) -> bool:
    return any(passes(rules, value) for value in grid)


def contract_with(rules: Sequence[Rule], type_name: str) -> HandoffContract:
    payload = IntEvent if type_name == "int" else FloatEvent
    return ready_contract(
        trigger=Trigger(event="figures.reported", payload=payload, dedupe_key="figures.id"),
        source_of_truth={"figures": "ledger"},
        sync=None,
        rules=tuple(rules),
    )


def _min(value: float, exclusive: bool = False) -> Min:
    return Min(field=FIELD, value=value, exclusive=exclusive, reason="bound")


def _max(value: float, exclusive: bool = False) -> Max:
    return Max(field=FIELD, value=value, exclusive=exclusive, reason="bound")


@settings(max_examples=200, deadline=None)
@given(rules=rule_sets(), type_name=st.sampled_from(["int", "float"]))
# Boundary cases too rare to trust to chance: a tie of bounds in either order, exclusive integral bounds on ints,
# and a closed set whose only whole value lies below the bound.
@example(rules=[_min(3), _min(3, exclusive=True), _max(3)], type_name="float")
@example(rules=[_min(3, exclusive=True), _min(3), _max(3)], type_name="float")
@example(rules=[_max(3), _max(3, exclusive=True), _min(3)], type_name="float")
@example(rules=[_min(3, exclusive=True), _max(3)], type_name="int")
@example(rules=[_max(-2, exclusive=True), _min(-2.5, exclusive=True)], type_name="int")
@example(rules=[OneOf(field=FIELD, values=(1, 2.5), reason="set"), _min(2)], type_name="int")
def test_contradiction_check_agrees_with_brute_force(rules: list[Rule], type_name: str) -> None:
    """A clash is reported exactly when no grid value passes every rule, and each clash named is minimal."""
    named = [rule.model_copy(update={"name": f"r{index}"}) for index, rule in enumerate(rules)]
    by_label = {rule.label: rule for rule in named}
    grid = GRIDS[type_name]

    findings = [f for f in check_contract(contract_with(named, type_name)).findings if f.kind in CLASHES]

    assert satisfiable_by_brute_force(named, grid) == (not findings)
    for finding in findings:
        clash = [by_label[label] for label in finding.subject.split(" / ")]
        assert not satisfiable_by_brute_force(clash, grid), finding.subject
        for left_out in range(len(clash)):
            rest = clash[:left_out] + clash[left_out + 1 :]
            assert satisfiable_by_brute_force(rest, grid), finding.subject


def test_brute_force_grid_sees_the_int_float_difference() -> None:
    """The grid itself tells a whole-number field from a real one (a sanity check of the oracle)."""
    rules = [Min(field=FIELD, value=1.5, exclusive=True, reason="r"), Max(field=FIELD, value=1.9, reason="r")]

    assert (False, True) == (
        satisfiable_by_brute_force(rules, GRIDS["int"]),
        satisfiable_by_brute_force(rules, GRIDS["float"]),
    )
