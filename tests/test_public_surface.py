"""What a user meets: the README's library example works as printed, and example packages use only `handoff`."""

from __future__ import annotations

import ast
import re
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_example_app_is_ready() -> None:
    """The app in README's "Adding a handoff" section runs as printed and passes the readiness gate."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Adding a handoff") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    module = types.ModuleType("clinic")
    sys.modules["clinic"] = module  # pydantic resolves the payload models' annotations through their module
    try:
        exec(compile(code.group(1), "README.md", "exec"), module.__dict__)
    finally:
        del sys.modules["clinic"]

    readiness = module.app.readiness()
    assert [] == readiness.findings
    assert ["appointment-to-billing"] == [c.contract for c in readiness.contracts]


def test_example_packages_import_only_the_public_face() -> None:
    """examples/ is a user package like any other: `from handoff import ...`, never the engine's inside."""
    inside = []
    for path in (ROOT / "examples").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            inside += [f"{path.relative_to(ROOT)}: {name}" for name in names if name.startswith("handoff.")]
    assert [] == inside
