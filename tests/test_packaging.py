"""The distribution ships every package under one import name, `handoff`."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE_FOLDERS = ("schemas", "workflows", "activities", "workers")


def test_every_package_folder_is_listed_for_setuptools() -> None:
    """A sub-package missing from pyproject's list would be left out of the wheel, and fail only once installed."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {
        "handoff." + ".".join(init.parent.relative_to(ROOT).parts)
        for folder in ENGINE_FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert folders | {"handoff"} == listed


def test_the_public_face_resolves_every_name() -> None:
    import handoff

    missing = [name for name in handoff.__all__ if getattr(handoff, name, None) is None]
    assert [] == missing
