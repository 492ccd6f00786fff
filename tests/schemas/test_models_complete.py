"""Every pydantic model of `handoff.schemas` is complete once its module is imported.

A model that names one defined later is otherwise completed on first use, by looking its module up in `sys.modules`;
inside the workflow sandbox that holds only what the workflow's own module imported, so the first run to build such a
model from passed-through code (workflows/steps.py) would fail its workflow task.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from pydantic import BaseModel

import handoff.schemas


def test_every_schema_model_is_complete_at_import() -> None:
    incomplete = []
    for module_info in pkgutil.iter_modules(handoff.schemas.__path__):
        module = importlib.import_module(f"handoff.schemas.{module_info.name}")
        for name, value in vars(module).items():
            ours = inspect.isclass(value) and issubclass(value, BaseModel) and value.__module__ == module.__name__
            if ours and not value.__pydantic_complete__:
                incomplete.append(f"{module.__name__}.{name}")

    assert [] == incomplete
