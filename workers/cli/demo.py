"""`handoff demo`: run the end-to-end demo (see workers/demo.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from handoff.workers.cli.app import app
from handoff.workers.demo import DemoFailed, run_demo


@app.command()
def demo(
    home: Annotated[Path, typer.Option(help="Where the demo keeps its state (wiped first).")] = Path(".handoff/demo"),
) -> None:
    """Start a server, a worker and the API; send events, decide the cases, print the report; stop everything."""
    try:
        run_demo(home)
    except DemoFailed as failed:
        Console(stderr=True).print(f"[bold red]The demo failed:[/] {failed}")
        raise typer.Exit(1) from None
