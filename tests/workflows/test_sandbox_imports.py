"""Every workflow module imports Handoff's own modules passed through the sandbox.

The sandbox executes a workflow's module afresh for each run (and once more when a worker is built, to validate
it), with every import that is not passed through: a schema module imported plainly rebuilds its pydantic models,
and the models of every schema module it imports, for every run. `workflows/schedules.py` did so until 2026-11-29:
each firing, and each worker's start, rebuilt the contract language's models (a tenth of a second here).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from handoff.workflows import drift, handoff, schedules

WORKFLOW_MODULES = [drift, handoff, schedules]
"""The modules that define the workflows the plugin registers."""


def plain_handoff_imports(source: str) -> list[str]:
    """The modules of Handoff that `source` imports at its top level outside a `workflow.unsafe.imports_passed_through()`
    block."""
    plain: list[str] = []
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.ImportFrom) and (statement.module or "").startswith("handoff"):
            plain.append(statement.module or "")
        elif isinstance(statement, ast.Import):
            plain += [alias.name for alias in statement.names if alias.name.startswith("handoff")]
    return plain


@pytest.mark.parametrize("module", WORKFLOW_MODULES, ids=lambda module: module.__name__.rsplit(".", 1)[-1])
def test_a_workflow_module_imports_handoff_passed_through(module: object) -> None:
    source = Path(getattr(module, "__file__", "")).read_text()

    assert [] == plain_handoff_imports(source)


def test_the_check_sees_a_plain_import() -> None:
    """The schedules module as it was: the check above could fail."""
    was = "from temporalio import workflow\nfrom handoff.schemas.schedules import FireRequest\n"

    assert ["handoff.schemas.schedules"] == plain_handoff_imports(was)


def test_the_plugin_registers_no_other_workflow() -> None:
    """The list above is whole: every workflow the plugin adds is defined in one of its modules."""
    from examples.restaurant import app

    registered = {workflow.__module__ for workflow in app.plugin().workflows or []}

    assert registered == {module.__name__ for module in WORKFLOW_MODULES}
