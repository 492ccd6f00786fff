"""A worker does not import the web stack: the plugin, the worker and the notifiers leave FastAPI, Starlette, Jinja
and uvicorn to the API process, so a worker starts sooner and holds less (`bench/README.md`, worker start)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from handoff.workers.cli import COMMAND_MODULES, command_named, commands

WEB_STACK = ("fastapi", "starlette", "jinja2", "uvicorn")


def test_the_plugin_and_the_worker_import_no_web_framework() -> None:
    probe = (
        "import json, sys; import handoff.workers.plugin, handoff.workers.worker, handoff.workers.notifiers; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(WEB_STACK)!r}))))"
    )
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)

    assert [] == json.loads(imported.stdout)


def test_the_probe_would_see_the_web_stack() -> None:
    """The same probe finds FastAPI once the API is imported: the test above could fail."""
    probe = "import json, sys; import handoff.workers.api; print(json.dumps('fastapi' in sys.modules))"
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)

    assert json.loads(imported.stdout) is True


# -- `handoff <command>` imports that command's module only ----------------------------------------------------------

HANDOFF = "from handoff.workers.cli import main; main()"
"""The console script, as `handoff` runs it."""


def test_handoff_worker_imports_no_other_command() -> None:
    """Imports are most of a worker's start: `handoff worker` loads the runtime's commands, not the API's, the
    migrations' (alembic) or the backtest's."""
    probe = (
        "import json, sys; from handoff.workers.cli import commands; commands('worker'); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('handoff.workers.cli.', 'alembic')))))"
    )
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)

    assert ["handoff.workers.cli.app", "handoff.workers.cli.runtime"] == json.loads(imported.stdout)


def test_every_command_is_mapped_to_the_module_that_registers_it() -> None:
    """`COMMAND_MODULES` is how `main` finds a command's module: a command missing from it would be unreachable
    by name (listed in help, "No such command" when typed)."""
    app = commands()
    registered = {
        (command.name or command.callback.__name__.replace("_", "-")): command.callback.__module__
        for command in app.registered_commands
        if command.callback is not None
    }
    registered |= {
        group.typer_instance.info.name: group.typer_instance.registered_commands[0].callback.__module__
        for group in app.registered_groups
        if group.typer_instance is not None and group.typer_instance.registered_commands[0].callback is not None
    }

    assert registered == {name: f"handoff.workers.cli.{module}" for name, module in COMMAND_MODULES.items()}


def test_help_lists_every_command_and_a_typo_is_a_usage_error() -> None:
    env = {**os.environ, "COLUMNS": "200"}
    shown = subprocess.run(
        [sys.executable, "-c", HANDOFF, "--help"], capture_output=True, text=True, timeout=60, env=env
    )
    typo = subprocess.run(
        [sys.executable, "-c", HANDOFF, "wroker"], capture_output=True, text=True, timeout=60, env=env
    )

    assert 0 == shown.returncode, shown.stderr
    listed = {line.split()[1] for line in shown.stdout.splitlines() if line.startswith("│ ") and len(line.split()) > 1}
    assert set(COMMAND_MODULES) <= listed
    assert (2, "No such command 'wroker'") == (typo.returncode, typo.stderr.split("│ ")[1].split(".")[0])


@pytest.mark.parametrize(
    ("args", "command"),
    [(["worker"], "worker"), (["--help"], None), ([], None), (["cases", "--json"], "cases"), (["-h", "up"], "up")],
)
def test_the_command_is_the_first_word_that_is_no_option(args: list[str], command: str | None) -> None:
    assert command == command_named(args)
