"""The exception budget in the contract language: its bounds, its defaults, and that a contract without one hashes as
before (so every locked contract stays valid), while a contract with one is a new version."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from handoff import ExceptionBudget
from handoff.schemas.contract import DecisionKind, ExceptionPolicy
from handoff.schemas.findings import FindingKind
from tests.workflows.sample_contracts import check, found, ready_contract


def test_defaults_are_an_hour_and_twenty_runs() -> None:
    """Only the rate must be given."""
    budget = ExceptionBudget(max_case_rate=0.2)
    assert (timedelta(hours=1), 20) == (budget.window, budget.min_runs)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_case_rate": 0}, "max_case_rate"),
        ({"max_case_rate": 1}, "max_case_rate"),
        ({"max_case_rate": -0.1}, "max_case_rate"),
        ({"max_case_rate": 0.2, "window": timedelta(0)}, "window"),
        ({"max_case_rate": 0.2, "min_runs": 0}, "min_runs"),
    ],
)
def test_nonsense_is_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    """A rate outside (0, 1), an empty window or no minimum of runs is a validation error on that field."""
    with pytest.raises(ValidationError) as invalid:
        ExceptionBudget.model_validate(changes)
    assert [(field,)] == [error["loc"] for error in invalid.value.errors()]


def test_a_contract_without_a_budget_hashes_as_before() -> None:
    """`budget=None` is left out of the content hash; a budget changes it (a new version)."""
    policy = ExceptionPolicy(owner="hosts", escalation=("managers",), on_timeout=DecisionKind.REJECT)
    plain = ready_contract(exceptions=policy)
    explicit_none = ready_contract(exceptions=policy.model_copy(update={"budget": None}))
    budgeted = ready_contract(
        exceptions=ExceptionPolicy(
            owner="hosts",
            escalation=("managers",),
            on_timeout=DecisionKind.REJECT,
            budget=ExceptionBudget(max_case_rate=0.2),
        )
    )
    assert plain.content_hash() == explicit_none.content_hash()
    assert plain.content_hash() != budgeted.content_hash()


def test_a_budget_is_ready_with_an_owner_and_refused_without_one() -> None:
    """A budget holds runs for an owner group to decide: without an owner the gate says who is missing."""
    budget = ExceptionBudget(max_case_rate=0.2)
    owned = ready_contract(exceptions=ExceptionPolicy(owner="hosts", on_timeout=DecisionKind.REJECT, budget=budget))
    unowned = ready_contract(exceptions=ExceptionPolicy(on_timeout=DecisionKind.REJECT, budget=budget))
    assert [] == found(check(owned))
    assert FindingKind.NO_EXCEPTION_OWNER in [kind for kind, _, _ in found(check(unowned))]
