"""`handoff new NAME`: a project of your own with one working handoff, its tests, and an HTTP adapter to start from.

    handoff new clinic && cd clinic && pip install -e '.[dev]' && handoff check --app clinic:app && pytest

The files come from `scaffold_templates/` beside this module (data, shipped in the wheel). A template's path maps to
the project's: the folder `package` becomes the package NAME, `gitignore` becomes `.gitignore`, and the `.tmpl`
suffix goes. In a template's text, `{{ name }}`, `{{ distribution }}` and `{{ requirement }}` are replaced.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from collections.abc import Iterator
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from typing import Annotated

import typer

from handoff.workers.cli.app import app

TEMPLATES = "scaffold_templates"
SUFFIX = ".tmpl"
PACKAGE_FOLDER = "package"
RENAMED = {"gitignore": ".gitignore"}
DISTRIBUTION = "temporal-handoff"
_PLACEHOLDER = re.compile(r"\{\{ (\w+) \}\}")


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="The project's Python package, e.g. clinic (a lowercase identifier).")],
    directory: Annotated[
        Path | None, typer.Option("--directory", "-d", help="Where to create the project (default: ./NAME).")
    ] = None,
) -> None:
    """Create a project with one handoff (contract, look-up, HTTP adapter, app) and tests that run it for real.

    It prints what to run next: install it, `handoff check --app NAME:app`, `pytest`.
    """
    problem = name_problem(name)
    if problem:
        raise typer.BadParameter(problem, param_hint="NAME")
    target = directory if directory is not None else Path(name)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise typer.BadParameter(
            f"{target} already exists and is not empty; choose another NAME or an empty --directory.",
            param_hint="--directory" if directory is not None else "NAME",
        )
    written = scaffold(name, target)
    typer.echo(f"Created {target}/ with {len(written)} files. Next:")
    typer.echo(f"  cd {target}")
    typer.echo("  pip install -e '.[dev]'")
    typer.echo(f"  handoff check --app {name}:app")
    typer.echo("  pytest")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be the project's package, or None when it can."""
    if not name.isidentifier() or keyword.iskeyword(name):
        suggestion = re.sub(r"[^0-9a-zA-Z_]+", "_", name).strip("_").lower()
        maybe = f" Perhaps {suggestion!r}?" if suggestion.isidentifier() and not keyword.iskeyword(suggestion) else ""
        return (
            f"{name!r} is not a valid Python package name: use letters, digits and underscores, not starting with a "
            f"digit (e.g. clinic or front_desk).{maybe}"
        )
    if name.lower() == "handoff":
        return "'handoff' is Handoff's own package: yours would shadow it. Choose another name, e.g. my_handoffs."
    if name.lower() != name:
        return f"{name!r}: package names are lowercase (PEP 8); use {name.lower()!r}."
    if name in sys.stdlib_module_names or name == "tests":
        return f"{name!r} is taken by Python's standard library (or the project's tests/): choose another name."
    owners = _installed_owners(name)
    if owners:
        return (
            f"{name!r} is already a module of the installed {', '.join(sorted(owners))}: yours and theirs would shadow "
            "each other. Choose another name."
        )
    return None


def _installed_owners(name: str) -> set[str]:
    """Installed distributions that provide the module `name`, except an editable install of a project of that
    name (an earlier `handoff new name`, installed with `pip install -e`)."""
    owners = set(metadata.packages_distributions().get(name, ()))
    return {owner for owner in owners if not (_normalized(owner) == _normalized(name) and _is_editable(owner))}


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _is_editable(distribution: str) -> bool:
    try:
        direct_url = metadata.distribution(distribution).read_text("direct_url.json")
        return bool(json.loads(direct_url or "{}").get("dir_info", {}).get("editable", False))
    except (metadata.PackageNotFoundError, ValueError, AttributeError):
        return False


def scaffold(name: str, target: Path) -> list[Path]:
    """Write the project for package `name` into `target`; the paths written, relative to it."""
    values = {"name": name, "distribution": name.replace("_", "-"), "requirement": requirement()}
    written: list[Path] = []
    for source, relative in _templates(resources.files("handoff.workers") / TEMPLATES, PurePosixPath()):
        path = target.joinpath(*_project_path(relative, name).parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_render(source.read_text(encoding="utf-8"), values, relative), encoding="utf-8")
        written.append(path.relative_to(target))
    return written


def requirement() -> str:
    """`temporal-handoff~=X.Y.Z` for the running Handoff (its public release), so the project gets a compatible one."""
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return DISTRIBUTION
    release = version.split("+", 1)[0]  # a local version (+g1234) cannot be pinned with ~=
    return f"{DISTRIBUTION}~={release}" if release.count(".") >= 1 else f"{DISTRIBUTION}>={release}"


def _templates(folder: Traversable, relative: PurePosixPath) -> Iterator[tuple[Traversable, PurePosixPath]]:
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if entry.is_dir():
            if entry.name != "__pycache__":
                yield from _templates(entry, relative / entry.name)
        elif entry.name.endswith(SUFFIX):
            yield entry, relative / entry.name


def _project_path(relative: PurePosixPath, name: str) -> PurePosixPath:
    parts = [name if part == PACKAGE_FOLDER else part for part in relative.parts[:-1]]
    file = relative.name.removesuffix(SUFFIX)
    return PurePosixPath(*parts, RENAMED.get(file, file))


def _render(text: str, values: dict[str, str], template: PurePosixPath) -> str:
    def value(match: re.Match[str]) -> str:
        try:
            return values[match.group(1)]
        except KeyError:
            raise RuntimeError(f"scaffold template {template} uses an unknown placeholder {match.group(0)}") from None

    return _PLACEHOLDER.sub(value, text)
