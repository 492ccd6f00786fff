"""`handoff check`: the readiness gate. (Placeholder until the gate lands; see issue 2.)"""

from __future__ import annotations

from workers.cli.app import app


@app.command()
def check() -> None:
    """Check every contract in the catalog and say which handoffs are READY."""
    raise NotImplementedError
