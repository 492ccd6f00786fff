"""`handoff new`: the names it refuses, what it writes, and the project it writes working as-is in a fresh venv."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from handoff.workers.cli import commands
from handoff.workers.cli.new import scaffold
from tests.packaging.conftest import UserVenv

app = commands("new")


def unboxed(output: str) -> str:
    """An error as one line of words, without the box and line breaks the terminal's width put into it."""
    return " ".join(output.replace("│", " ").split())


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("handoff", "would shadow it"),
        ("front-desk", "not a valid Python package name"),
        ("2clinic", "not a valid Python package name"),
        ("class", "not a valid Python package name"),
        ("json", "standard library"),
        ("pydantic", "installed pydantic"),
    ],
)
def test_a_name_that_cannot_be_a_package_is_refused(name: str, said: str, tmp_path: Path) -> None:
    """A name that is no identifier, or would shadow Handoff or another module, exits 2 and writes nothing."""
    result = CliRunner().invoke(app, ["new", name, "--directory", str(tmp_path / "project")])

    assert (2, True) == (result.exit_code, said in unboxed(result.output)), result.output
    assert not (tmp_path / "project").exists()


def test_an_existing_non_empty_directory_is_refused(tmp_path: Path) -> None:
    """`handoff new` never writes into a folder that has files: exit 2, the file untouched."""
    (tmp_path / "clinic").mkdir()
    (tmp_path / "clinic" / "notes.txt").write_text("mine")

    result = CliRunner().invoke(app, ["new", "clinic", "--directory", str(tmp_path / "clinic")])

    assert (2, True) == (result.exit_code, "not empty" in unboxed(result.output)), result.output
    assert ["notes.txt"] == [path.name for path in (tmp_path / "clinic").iterdir()]


def test_the_project_is_complete_python_with_every_placeholder_filled(tmp_path: Path) -> None:
    """Every file is written with its placeholders filled; the Python parses; the package and tests are in place."""
    written = scaffold("front_desk", tmp_path)

    texts = {path.as_posix(): (tmp_path / path).read_text() for path in written}
    assert [] == [path for path, text in texts.items() if "{{" in text]
    for path, text in texts.items():
        if path.endswith(".py"):
            ast.parse(text, filename=path)
    assert {"front_desk/__init__.py", "front_desk/billing.py", "tests/conftest.py", ".gitignore"} <= set(texts)
    project = tomllib.loads(texts["pyproject.toml"])["project"]
    assert ("front-desk", f"temporal-handoff~={metadata.version('temporal-handoff')}") == (
        project["name"],
        project["dependencies"][0],
    )


def test_the_project_passes_its_own_linter(tmp_path: Path) -> None:
    """The written project is clean under the ruff settings it ships (its own pyproject), whatever its name."""
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.skip("ruff is not installed beside this Python")
    for name in ("clinic", "zoo"):  # a package name sorted before and after `tests`: imports stay ordered
        scaffold(name, tmp_path / name)
        for command in (["check", "--quiet", "."], ["format", "--check", "--quiet", "."]):
            linted = subprocess.run([ruff, *command], cwd=tmp_path / name, capture_output=True, text=True, timeout=60)
            assert 0 == linted.returncode, f"ruff {' '.join(command)} on {name}:\n{linted.stdout}{linted.stderr}"


@pytest.mark.slow
def test_a_new_project_is_ready_and_its_tests_pass(user_venv: UserVenv, workspace: Path) -> None:
    """`handoff new clinic`, `pip install -e`, then `handoff check` says READY and the project's pytest passes."""
    created = user_venv.run("handoff", "new", "clinic", cwd=workspace)
    assert 0 == created.code, created.explain()
    project = workspace / "clinic"

    installed = user_venv.run("pip", "install", "--quiet", "-e", project, cwd=workspace, timeout=300)
    assert 0 == installed.code, installed.explain()

    checked = user_venv.run("handoff", "check", "--app", "clinic:app", cwd=project)
    assert (0, True, False) == (checked.code, "READY" in checked.stdout, "NOT READY" in checked.stdout), (
        checked.explain()
    )

    tested = user_venv.run("pytest", "-p", "no:cacheprovider", cwd=project)
    assert (0, True) == (tested.code, " passed" in tested.stdout), tested.explain()
